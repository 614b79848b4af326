# C interface of gw/_fast/anthropic.pyx: the Anthropic Messages backend decoder.

from .events cimport Decoder, Sink


cdef class _Usage:
    cdef long long input, output, cache_read, cache_write
    cdef bint seen                  # a usage object came
    cdef bint read(self, object usage)
    cdef object openai(self)


cdef class AnthropicDecoder(Decoder):
    cdef bint _started              # message_start came
    cdef bint _finished             # a stop_reason came (finish was called)
    cdef int _calls                 # tool_use blocks so far
    cdef dict _tools                # Anthropic block index -> tool call index
    cdef _Usage _usage
    cdef readonly object id         # the message id (str), or None

    cdef int _message_start(self, dict obj) except -1
    cdef int _usage_of(self, object usage) except -1
    cdef int _block_start(self, dict obj) except -1
    cdef int _message_delta(self, dict obj) except -1


cpdef read_answer(dict message, Sink sink)
