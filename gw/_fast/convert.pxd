# C interface of gw/_fast/convert.pyx: OpenAI wire helpers.

from .sse cimport Framed

cdef enum:
    # classify_chunk() flags
    _IS_DONE = 1
    _MAY_HAVE_USAGE = 2
    _MAY_HAVE_ERROR = 4
    _MAY_HAVE_FINISH = 8
    _NOT_OBJECT = 16    # neither [DONE] nor shaped like a JSON object

cpdef bytes sse_data(bytes payload)
cpdef bytes error_event(dict error)
cpdef int classify_chunk(bytes data) except -1


cdef class OpenAIStream(Framed):
    # done: [DONE] was seen; error: the upstream's error object; invalid: why
    # the stream is not valid SSE/JSON
    cdef bint _forward_usage
    cdef readonly object usage      # the upstream's usage dict, once seen
    cdef readonly bint finished     # some choice had a finish_reason
    cdef bint _watch                # events may be Azure's annotations: search them
    cdef object _identity           # (object, id, created, model) of the first answer chunk, once needed
    cdef list _held                 # annotations waiting for _identity; None: none seen

    cpdef bytes feed(self, bytes chunk)
    cpdef bytes close(self)
    cdef bint _empty_object(self, bytes data) noexcept
    cdef int _annotation(self, dict obj, list out) except -1
    cdef bytes _rewrite(self, dict obj)
