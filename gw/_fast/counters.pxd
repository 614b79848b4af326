# C interface of gw/_fast/counters.pyx: rate-limit state shared by the workers of one `gw serve`.

cdef class Table:
    cdef char *_base                # the mapping: a 128-byte header, then the slots
    cdef size_t _size
    cdef unsigned long long _slots  # a power of two
    cdef readonly object path       # None: an anonymous table, private to this process

    cdef char *_open(self) except NULL
    cpdef double take(self, bytes key, double now, double limit, double period, double cost=*) except -1.0
    cpdef double adjust(self, bytes key, double now, double limit, double period,
                        double delta_cost) except -1.0
    cpdef double add(self, bytes key, double amount, double now, double ttl,
                     bint sliding=*) except -1.0
    cpdef double get(self, bytes key, double now) except -1.0
