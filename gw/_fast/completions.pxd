# C interface of gw/_fast/completions.pyx: legacy completions (text_completion) on chat backends.

from .events cimport Encoder
from .sse cimport SSEDecoder


cdef class _Text:
    cdef bytes mid                  # ',"index":N,"logprobs":null,"finish_reason":'
    cdef bint finished


cdef class CompletionChunks(Encoder):
    cdef long long _created
    cdef str _model
    cdef bint _include_usage
    cdef str _id
    cdef bytes _envelope            # a chunk up to its "choices" value
    cdef bytes _text_open           # a chunk up to its text's value
    cdef _Text _first               # choice 0, once it has an event
    cdef dict _choices              # choice index -> _Text

    cdef int _begin(self, object id) except -1
    cdef _Text _choice(self, int choice)


cdef class _Answer:
    cdef list texts
    cdef str finish


cdef class CompletionAnswer(Encoder):
    cdef long long _created
    cdef str _model
    cdef str _id
    cdef dict _choices              # choice index -> _Answer

    cdef _Answer _choice(self, int choice)
    cpdef dict answer(self)


cdef class CompletionStream:
    cdef SSEDecoder _decoder
    cpdef bytes feed(self, bytes chunk)


cpdef str completion_id(object id)
cpdef dict completion_to_chat(dict body)
cpdef dict chat_to_completion(dict answer)
