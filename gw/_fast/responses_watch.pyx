# cython: language_level=3
"""The Responses API passed through (``/v1/responses`` on an OpenAI or Azure
provider with ``responses: native``): its stream watched, its usage read.

    watch = ResponsesWatch()
    out = watch.feed(upstream_bytes)     # the upstream's own event bytes
    watch.usage                          # OpenAI chat-shaped, once the response ended
"""

from .rules cimport make_usage
from .sse cimport Event, Framed, SSEDecoder, forward_last, joined

# The events that end a response: each carries the final Response object.
_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})
# Held until the first output event: a failure right after them is still retryable.
_OPENING = frozenset({"response.created", "response.in_progress", "response.queued"})


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


cdef bint _is_object(bytes data):
    cdef const char* p = data
    cdef Py_ssize_t a = 0
    cdef Py_ssize_t b = len(data)
    while a < b and (p[a] == b' ' or p[a] == b'\t' or p[a] == b'\r' or p[a] == b'\n'):
        a += 1
    while b > a and (p[b - 1] == b' ' or p[b - 1] == b'\t' or p[b - 1] == b'\r' or p[b - 1] == b'\n'):
        b -= 1
    return b - a >= 2 and p[a] == b'{' and p[b - 1] == b'}'


cdef class ResponsesWatch(Framed):
    """Watches a Responses stream forwarded as it is.

    Each event goes out as the upstream's own bytes. Only the final events
    (``response.completed`` / ``incomplete`` / ``failed``, for the usage and
    the end) and ``error`` are parsed; the others are checked to be shaped
    like a JSON object. The opening events wait for the first output event,
    so that a failure right after them (``error``, ``response.failed``) is
    still retried on another target; after it, ``response.failed`` is the
    backend's own end and goes out as it is.
    """

    cdef object _usage
    cdef list _held         # the opening events, until the first output event

    def __init__(self):
        self._sse = SSEDecoder()
        self._usage = None
        self._held = []

    @property
    def usage(self):
        """OpenAI usage (``make_usage``) from the final event, or None before it."""
        return self._usage

    cpdef bytes feed(self, bytes chunk):
        cdef list out = []
        cdef list events
        cdef Event event
        cdef object name, obj, response
        events = self._events(chunk)
        if events is None:
            return b""
        for event in events:
            name = event.event
            if not _is_object(event.data):
                self.invalid = "an event is not a JSON object"
                break
            obj = None
            if name is None or name in _ENDS or name == "error":
                obj = self._object(event.data, "an event")
                if obj is None:
                    break
                if name is None:
                    name = obj.get("type")
            if name == "error":
                self.error = obj
                break
            if name in _ENDS:
                response = obj.get("response")
                if isinstance(response, dict):
                    self._usage = response_usage(response.get("usage"))
                if name == "response.failed" and self._held is not None:
                    # nothing went out yet: a failure another target may not have
                    error = response.get("error") if isinstance(response, dict) else None
                    self.error = error if error is not None else obj
                    break
            if self._held is not None:
                if name in _OPENING:
                    self._held.append(event.raw)
                    continue
                out.extend(self._held)
                self._held = None
            if name in _ENDS:
                self.done = True
                forward_last(out, event)
                break
            out.append(event.raw)
        return joined(out)

    cpdef bytes close(self):
        """At EOF: notes a stream cut inside an event."""
        self._close_sse()
        return b""
