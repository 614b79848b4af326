# C interface of gw/_fast/responses.pyx: the OpenAI Responses API as a client
# protocol. Its encoders write gw's events as Responses answers.

from .events cimport Encoder


cdef class ResponsesEncoder(Encoder):
    cdef str _id
    cdef long long _created
    cdef str _model
    cdef dict _echo                 # the request's fields every Response repeats
    cdef dict _tools                # chat name -> (name, namespace, custom) of the offered tools
    cdef list _items                # the output items (_Item), in output order
    cdef object _open               # the open message or reasoning _Item, or None
    cdef dict _calls                # tool call index -> its _Item
    cdef object _reason             # gw's finish reason of choice 0, or None

    cdef int _run(self, int kind, str text) except -1
    cdef int _close_all(self, str status) except -1
    cdef int _close(self, object item, str status) except -1
    cdef int _added(self, object item) except -1
    cdef int _delta(self, object item, str text) except -1
    cdef int _done(self, object item) except -1
    cdef dict _response(self, bint final)


cdef class ResponseAnswer(ResponsesEncoder):
    cpdef dict answer(self)


cdef class ResponseEvents(ResponsesEncoder):
    cdef bint _opened               # response.created and response.in_progress were written
    cdef readonly long long sequence_number   # the next event's

    cdef int _begin(self) except -1
    cdef int _event(self, bytes kind, dict data) except -1
