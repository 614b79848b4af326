# C interface of gw/_fast/convert.pyx: OpenAI wire helpers.

cdef enum:
    # classify_chunk() flags
    _IS_DONE = 1
    _MAY_HAVE_USAGE = 2
    _MAY_HAVE_ERROR = 4
    _MAY_HAVE_FINISH = 8

cpdef bytes sse_data(bytes payload)
cpdef bytes chunk_event(str id, long long created, str model, dict delta,
                        object finish_reason=*, int index=*)
cpdef bytes usage_event(str id, long long created, str model, dict usage)
cpdef bytes error_event(dict error)
cpdef int classify_chunk(bytes data) except -1
