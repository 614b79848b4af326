# C interface of gw/_fast/messages.pyx: the Anthropic Messages API as a client
# protocol. Its encoders write gw's events as Anthropic's answers.

from .events cimport Encoder


cdef class AnthropicEncoder(Encoder):
    cdef str _id
    cdef str _model
    cdef object _stops              # the request's stop_sequences (list) or None
    cdef int _open                  # the open block's kind: _NONE, _TEXT, _THINKING, _TOOL
    cdef dict _tools                # tool call index -> the subclass's state for it
    cdef object _reason             # gw's finish reason of choice 0
    cdef object _matched            # the stop sequence that ended it, if known

    cdef int _run(self, int kind, str text) except -1
    cdef int _tool(self, int index, str call_id, str name) except -1
    cdef int _fragment(self, object tool, str fragment) except -1
    cdef int _finish(self) except -1
    cdef tuple _stop(self, bint tool_use)


cdef class MessagesEvents(AnthropicEncoder):
    cdef bint _opened               # message_start was written
    cdef Py_ssize_t _index          # the open block's index
    cdef Py_ssize_t _next           # the next block's index

    cdef int _message_start(self) except -1
    cdef int _start_block(self, bytes block, int kind) except -1
    cdef int _close_block(self) except -1


cdef class MessageAnswer(AnthropicEncoder):
    cdef list _blocks               # [kind, parts] or [_TOOL, id, name, fragments], in order
    cdef list _parts                # the open text or thinking block's parts, or None

    cpdef dict answer(self)

