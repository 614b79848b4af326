# C interface of gw/_fast/ollama.pyx: Ollama's /api/chat answers as events.

from .events cimport Decoder, Sink
from .sse cimport NDJSONDecoder


cdef class OllamaDecoder(Decoder):
    cdef NDJSONDecoder _lines
    cdef object _id                 # given to start(): Ollama's answers have none
    cdef bint _started              # start() was called
    cdef int _calls                 # tool calls started: the next one's index

    cdef int _read(self, bytes chunk, bint eof) except -1
    cdef bint _line(self, bytes line) except -1


cpdef read_answer(dict answer, Sink sink, object id=*)
