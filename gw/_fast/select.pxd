# C interface of gw/_fast/select.pyx: smooth weighted round-robin.

cdef enum:
    MAX_TARGETS = 64                # one bit each in the `excluded` mask


cdef class SmoothWeighted:
    cdef int _n
    cdef long long _weight[MAX_TARGETS]
    cdef long long _current[MAX_TARGETS]
    cdef readonly tuple weights

    cpdef int pick(self, unsigned long long excluded=*)
