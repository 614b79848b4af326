# C interface of gw/_fast/openai.pyx: OpenAI Chat Completions answers (OpenAI,
# Azure, vLLM and every compatible server) decoded into gw's events.

from .events cimport Decoder, Sink


cdef class _Choice:
    cdef int index                  # the OpenAI choice index
    cdef bint finished              # its finish_reason came
    cdef dict tools                 # a call's key (its `index`, else its id) -> its event index
    cdef object last_tool           # key of the last call, for servers that omit `index`
    cdef int calls                  # tool calls started


cdef class ChatDecoder(Decoder):
    cdef bint _started
    cdef _Choice _first             # choice 0, the one that decides the end
    cdef dict _others               # other choices: index -> _Choice

    cdef int _chunk(self, dict obj) except -1
    cdef int _choice(self, _Choice state, dict choice) except -1
    cdef int _tool(self, _Choice state, dict call) except -1
    cdef int _end(self) except -1


cpdef read_answer(dict answer, Sink sink)
