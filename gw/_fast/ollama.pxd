# C interface of gw/_fast/ollama.pyx: Ollama's /api/chat answers as events.

from .events cimport Sink
from .sse cimport NDJSONDecoder


cdef class OllamaDecoder:
    cdef Sink _sink
    cdef NDJSONDecoder _lines
    cdef object _id                 # given to start(): Ollama's answers have none
    cdef bint _started              # start() was called
    cdef int _calls                 # tool calls started: the next one's index
    cdef readonly bint done         # the done line came: end() was called
    cdef readonly object error      # Ollama's error (a string) sent after HTTP 200
    cdef readonly object invalid    # why the bytes are not Ollama's NDJSON

    cpdef feed(self, bytes chunk)
    cpdef close(self)
    cdef bint _line(self, bytes line) except -1


cpdef read_answer(dict answer, Sink sink, object id=*)
