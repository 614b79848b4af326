# cython: language_level=3
"""The Responses API passed through (``/v1/responses`` on an OpenAI or Azure
provider with ``responses: native``): its stream watched, its usage read.

    watch = ResponsesWatch()
    out = watch.feed(upstream_bytes)     # the upstream's own event bytes
    watch.usage                          # OpenAI chat-shaped, once the response ended
"""

from .rules cimport make_usage
from .sse cimport Watch

# The events that end a response: each carries the final Response object.
cdef frozenset _ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})
cdef frozenset _PARSE = _ENDS | {"error"}
# Held until the first output event: a failure right after them is still retryable.
cdef frozenset _OPENING = frozenset({"response.created", "response.in_progress", "response.queued"})


cdef inline long long _count(object d, str name):
    cdef object v
    if not isinstance(d, dict):
        return 0
    v = (<dict>d).get(name)
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        return v
    return 0


cpdef object response_usage(object usage):
    """A Response object's ``usage`` as OpenAI chat usage (``make_usage``), or None.

    ``input_tokens`` counts the cached ones too (``input_tokens_details.cached_tokens``).
    """
    cdef long long total_in, cached
    if not isinstance(usage, dict):
        return None
    total_in = _count(usage, "input_tokens")
    cached = _count(usage.get("input_tokens_details"), "cached_tokens")
    if cached > total_in:
        cached = total_in
    return make_usage(total_in - cached, _count(usage, "output_tokens"), cached, 0,
                      _count(usage.get("output_tokens_details"), "reasoning_tokens"))


cdef class ResponsesWatch(Watch):
    """Watches a Responses stream forwarded as it is (``sse.Watch``): the final
    events (``response.completed`` / ``incomplete`` / ``failed``, for the usage
    and the end) and ``error`` are parsed. The opening events wait for the
    first output event, so that a failure right after them (``error``,
    ``response.failed``) is still retried on another target; after it,
    ``response.failed`` is the backend's own end and goes out as it is.
    """

    cdef object _usage

    def __init__(self):
        Watch.__init__(self, _PARSE, _OPENING, _ENDS)
        self._usage = None

    @property
    def usage(self):
        """OpenAI usage (``make_usage``) from the final event, or None before it."""
        return self._usage

    cdef bint _seen(self, object name, dict obj) except -1:
        cdef object response, error
        if name == "error":
            self.error = obj
            return True
        if name in _ENDS:
            response = obj.get("response")
            if isinstance(response, dict):
                self._usage = response_usage(response.get("usage"))
            if name == "response.failed" and self._held is not None:
                # nothing went out yet: a failure another target may not have
                error = response.get("error") if isinstance(response, dict) else None
                self.error = error if error is not None else obj
                return True
        return False
