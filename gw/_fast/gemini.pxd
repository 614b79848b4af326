# C interface of gw/_fast/gemini.pyx: the Gemini backend decoder.

from .events cimport Sink
from .sse cimport SSEDecoder


cdef class GeminiDecoder:
    cdef SSEDecoder _sse
    cdef Sink _sink
    cdef object _id                 # the id for start(), else Gemini's responseId
    cdef bint _started
    cdef dict _choices              # choice index -> _Choice
    cdef readonly object error      # Gemini's error object sent after HTTP 200, or a block
    cdef readonly object invalid    # why the bytes are not SSE of JSON objects, or None
    cdef readonly object blocked    # promptFeedback.blockReason when no candidate came
    cdef readonly bint done         # end() was called

    cpdef feed(self, bytes chunk)
    cpdef close(self)
    cdef bint _event(self, bytes data) except -1
    cdef int _candidate(self, dict candidate, Py_ssize_t pos) except -1


cpdef read_answer(dict answer, Sink sink, object id=*)
