# C interface of gw/_fast/completions.pyx: legacy completions (text_completion) on chat backends.

from .chat cimport OpenAIAnswer, OpenAIChunks


cdef class _Text:
    cdef bytes mid                  # ',"index":N,"logprobs":null,"finish_reason":'
    cdef bint finished


cdef class CompletionChunks(OpenAIChunks):
    cdef bytes _text_open           # a chunk up to its text's value

    cdef _Text _choice(self, int choice)


cdef class CompletionAnswer(OpenAIAnswer):
    pass


cpdef str completion_id(object id)
cpdef dict completion_to_chat(dict body)
