# C interface of gw/_fast/chat.pyx: the OpenAI Chat Completions client encoders,
# and the OpenAI envelope they share with legacy completions (completions.pyx).

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcpy

from .events cimport Encoder


# b"".join((a, b, c, d)) without the tuple: one allocation, one copy of each.
# The encoders build every event from a precomputed head, the JSON of the
# event's value and a precomputed tail.
cdef inline bytes cat4(bytes a, bytes b, bytes c, bytes d):
    cdef Py_ssize_t na = PyBytes_GET_SIZE(a)
    cdef Py_ssize_t nb = PyBytes_GET_SIZE(b)
    cdef Py_ssize_t nc = PyBytes_GET_SIZE(c)
    cdef Py_ssize_t nd = PyBytes_GET_SIZE(d)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, na + nb + nc + nd)
    cdef char* p = PyBytes_AS_STRING(out)
    memcpy(p, PyBytes_AS_STRING(a), na)
    memcpy(p + na, PyBytes_AS_STRING(b), nb)
    memcpy(p + na + nb, PyBytes_AS_STRING(c), nc)
    memcpy(p + na + nb + nc, PyBytes_AS_STRING(d), nd)
    return out


cdef class OpenAIEncoder(Encoder):
    # What the encoders of an OpenAI answer (chat or text completion, stream or
    # whole) share.
    cdef long long _created
    cdef str _model
    cdef str _object                # "chat.completion", "text_completion", ...
    cdef str _id
    cdef dict _choices              # choice index -> the subclass's state

    cdef str _answer_id(self, object id)
    cdef int _begin(self, object id) except -1


cdef class OpenAIChunks(OpenAIEncoder):
    # A chunk stream: the envelope of every chunk, the usage chunk and [DONE].
    cdef bint _include_usage
    cdef bytes _envelope            # a chunk up to its "choices" value
    cdef object _first              # choice 0's state, once it has an event

    cdef bytes _choice_head(self, int choice, bytes before, bytes after)
    cdef int _keep(self, int choice, object state) except -1


cdef class _Message:
    cdef list texts
    cdef list reasoning
    cdef list calls                 # tool call index -> its dict (or None)
    cdef list args                  # tool call index -> its argument fragments
    cdef str finish                 # the finish reason, once it came


cdef class OpenAIAnswer(OpenAIEncoder):
    # One whole answer: per-choice _Message, the envelope and the usage.
    cdef _Message _message(self, int choice)
    cdef int _add(self, int choice, str text, bint reasoning) except -1
    cdef list _choice_list(self)
    cpdef dict answer(self)


cdef class _Call:
    cdef bytes args_head            # a tool_args chunk up to its fragment
    cdef bint has_args              # a fragment went out


cdef class _Choice:
    cdef bytes head                 # every chunk of this choice up to its delta object
    cdef bint opened                # the role chunk went out
    cdef bint finished              # the finish chunk went out
    cdef list calls                 # tool call index -> _Call (or None)


cdef class ChatChunks(OpenAIChunks):
    cdef _Choice _open(self, int choice)
    cdef int _delta(self, int choice, bytes open, str text) except -1


cdef class ChatAnswer(OpenAIAnswer):
    pass


cpdef str chat_id(object id)
