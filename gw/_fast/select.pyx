# cython: language_level=3
"""Smooth weighted round-robin, nginx's algorithm (ngx_http_upstream_get_peer).

Each pick adds every candidate's weight to its `current`, takes the largest
`current` and subtracts the candidates' total from it. Over any `sum(weights)`
picks from a zero state each target is picked exactly `weight` times, and the
picks interleave (2:1 gives 0, 1, 0) instead of bunching (0, 0, 1).
"""

# Weights are capped so no sum of them can overflow: |current[i]| never
# exceeds the total weight, at most 64 * (2**32 - 1) < 2**38.
cdef long long _MAX_WEIGHT = 0xFFFFFFFF


cdef class SmoothWeighted:
    """SmoothWeighted([2, 1]).pick() -> 0, then 1, then 0, ...

    One per worker and model; not thread-safe (asyncio runs it on one thread).
    """

    def __init__(self, weights):
        cdef Py_ssize_t i, n
        cdef tuple ws
        try:
            ws = tuple(weights)
        except TypeError:
            raise ValueError(f"weights: expected a sequence of positive ints, got {weights!r}") from None
        n = len(ws)
        if n < 1 or n > MAX_TARGETS:
            raise ValueError(f"weights: expected 1 to {MAX_TARGETS} entries, got {n}")
        for i in range(n):
            w = ws[i]
            if type(w) is bool or not isinstance(w, int) or not 1 <= w <= _MAX_WEIGHT:
                raise ValueError(
                    f"weights[{i}]: expected an int from 1 to {_MAX_WEIGHT}, got {w!r}")
            self._weight[i] = w
            self._current[i] = 0
        self._n = <int>n
        self.weights = ws

    @property
    def size(self):
        return self._n

    cpdef int pick(self, unsigned long long excluded=0):
        """Index of the next target, skipping those whose bit is set in `excluded`; -1 if none."""
        cdef int i
        cdef int best = -1
        cdef long long total = 0
        # i < self._n <= MAX_TARGETS, the length of both arrays, and the shift
        # amount i < 64 is defined for a 64-bit mask.
        for i in range(self._n):
            if (excluded >> i) & 1:
                continue
            self._current[i] += self._weight[i]
            total += self._weight[i]
            if best < 0 or self._current[i] > self._current[best]:
                best = i
        if best >= 0:
            self._current[best] -= total
        return best

    def __repr__(self):
        return f"SmoothWeighted({list(self.weights)!r})"
