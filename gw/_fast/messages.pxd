# C interface of gw/_fast/messages.pyx: the Anthropic Messages API as a client
# protocol. Its encoders write gw's events as Anthropic's answers.

from .events cimport Converter, Encoder


cdef class MessagesEvents(Encoder):
    cdef str _id
    cdef str _model
    cdef object _stops              # the request's stop_sequences (list) or None
    cdef bint _opened               # message_start was written
    cdef int _open                  # the block being written: _NONE, _TEXT, _THINKING, _TOOL
    cdef Py_ssize_t _index          # the open block's index
    cdef Py_ssize_t _next           # the next block's index
    cdef dict _tools                # tool call index -> _Tool (block index, fragments)
    cdef object _reason             # gw's finish reason of choice 0
    cdef object _matched            # the stop sequence that ended it, if known

    cdef int _message_start(self) except -1
    cdef int _start_block(self, bytes block, int kind) except -1
    cdef int _close_block(self) except -1


cdef class MessageAnswer(Encoder):
    cdef str _id
    cdef str _model
    cdef object _stops
    cdef list _blocks               # [kind, parts] or [_TOOL, id, name, fragments], in order
    cdef list _run                  # the open text or thinking block's parts, or None
    cdef int _open                  # its kind
    cdef dict _tools                # tool call index -> its fragments
    cdef object _reason
    cdef object _matched

    cdef int _append(self, int kind, str text) except -1
    cpdef dict answer(self)


cdef class MessageStream(Converter):
    pass
