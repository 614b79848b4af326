# C interface of gw/_fast/gemini.pyx: the Gemini backend decoder.

from .events cimport Decoder, Sink


cdef class GeminiDecoder(Decoder):
    cdef object _id                 # the id for start(), else Gemini's responseId
    cdef bint _started
    cdef dict _choices              # choice index -> _Choice
    cdef readonly object blocked    # promptFeedback.blockReason when no candidate came
    cdef bint _event(self, bytes data) except -1
    cdef int _candidate(self, dict candidate, Py_ssize_t pos) except -1


cpdef read_answer(dict answer, Sink sink, object id=*)
