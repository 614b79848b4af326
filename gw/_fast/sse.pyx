# cython: language_level=3
"""Push decoders: bytes in, whole events out.

``SSEDecoder`` follows the WHATWG event-stream rules; ``NDJSONDecoder`` splits
newline-delimited JSON (Ollama). Both keep one ``bytearray`` of undispatched
bytes plus a scan position, so no byte is scanned twice however the stream is
split (feeding one byte at a time stays linear).
"""

from cpython.bytearray cimport (
    PyByteArray_AS_STRING,
    PyByteArray_FromStringAndSize,
    PyByteArray_GET_SIZE,
    PyByteArray_Resize,
)
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memchr, memcmp, memcpy

import orjson

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


class SSEError(ValueError):
    """A cut stream at close(), or an event (or NDJSON line) over the size cap."""


cdef inline int _append(bytearray buf, const char* p, Py_ssize_t n) except -1:
    # PyByteArray_Resize over-allocates, so repeated appends are amortised O(n).
    cdef Py_ssize_t size = PyByteArray_GET_SIZE(buf)
    if n:
        PyByteArray_Resize(buf, size + n)
        memcpy(PyByteArray_AS_STRING(buf) + size, p, n)
    return 0


cdef inline bint _take(bytearray buf, bytes chunk) except -1:
    # A read appended to the buffer; False when it was empty.
    cdef Py_ssize_t n
    if chunk is None:
        raise TypeError("feed() takes bytes, not None")
    n = PyBytes_GET_SIZE(chunk)
    _append(buf, PyBytes_AS_STRING(chunk), n)
    return n != 0


cdef inline bint _is_space(char c) noexcept nogil:
    return c == b' ' or c == b'\t' or c == b'\r' or c == b'\n' or c == b'\f' or c == b'\v'


cdef inline bint _all_space(const char* p, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if not _is_space(p[i]):
            return False
    return True


cdef Py_ssize_t _limit(Py_ssize_t value, str name) except -1:
    if value <= 0:
        raise ValueError(f"{name} must be positive")
    return value


cdef class Event:
    """One dispatched SSE event.

    ``event`` and ``id`` are ``str | None``; ``data`` is the ``data:`` lines
    joined with ``b"\\n"``; ``raw`` is the exact stream bytes it came from.
    """

    def __init__(self, bytes data=b"", event=None, id=None, bytes raw=b""):
        self.data = data
        self.event = event
        self.id = id
        self.raw = raw

    def __repr__(self):
        return f"Event(data={self.data!r}, event={self.event!r}, id={self.id!r})"


cdef class SSEDecoder:
    """for event in decoder.feed(chunk): ...; decoder.close()"""

    def __init__(self, Py_ssize_t max_event_bytes=1 << 20):
        self._max = _limit(max_event_bytes, "max_event_bytes")
        self._buf = bytearray()
        self._start = 0
        self._pos = 0
        self._scan = 0
        self._bom_done = False
        self._skip_lf = False
        self._pending = False
        self._event = None
        self._id = None
        self._ndata = 0
        self._d0 = 0
        self._d1 = 0
        self._data = None

    cpdef list feed(self, bytes chunk):
        cdef list out = []
        cdef Py_ssize_t size, le, nxt, nl
        cdef char* base
        cdef const char* r
        if not _take(self._buf, chunk):
            return out
        # The buffer is not resized again until the compaction below, so
        # `base` stays valid for the whole parse.
        base = PyByteArray_AS_STRING(self._buf)
        size = PyByteArray_GET_SIZE(self._buf)

        if not self._bom_done:
            # A UTF-8 BOM may only open the stream (so _pos == 0 here); it
            # stays in the first event's raw but is not parsed.
            if size < 3:
                if memcmp(base, b"\xef\xbb\xbf", size) == 0:
                    return out  # maybe a BOM, wait for more bytes
            elif memcmp(base, b"\xef\xbb\xbf", 3) == 0:
                self._pos = self._scan = 3
            self._bom_done = True

        if self._skip_lf:
            # The previous feed ended in CR: an LF now belongs to that line end.
            self._skip_lf = False
            if base[self._pos] == b'\n':
                self._pos += 1
                if self._scan < self._pos:
                    self._scan = self._pos

        # `nl` caches the next LF at or after _scan (size if none), so a
        # CR-only stream does not rescan the rest of the buffer for each line.
        nl = -1
        while True:
            if nl < self._scan:
                r = <const char*>memchr(base + self._scan, b'\n', size - self._scan)
                nl = size if r == NULL else r - base
            r = <const char*>memchr(base + self._scan, b'\r', nl - self._scan)
            le = nl if r == NULL else r - base
            if le == size:
                self._scan = size  # no line end yet: never look at these bytes again
                break
            if base[le] == b'\r':
                if le + 1 == size:
                    nxt = size
                    self._skip_lf = True  # an LF may come with the next chunk
                elif base[le + 1] == b'\n':
                    nxt = le + 2
                else:
                    nxt = le + 1
            else:
                nxt = le + 1
            self._line(base, self._pos, le, nxt, out)
            self._pos = self._scan = nxt

        if size - self._start > self._max:
            raise SSEError(f"SSE event larger than {self._max} bytes")
        if self._start:
            # Drop dispatched bytes (CPython advances the start of a bytearray
            # in O(1) when deleting a prefix).
            del self._buf[:self._start]
            self._pos -= self._start
            self._scan -= self._start
            self._d0 -= self._start
            self._d1 -= self._start
            self._start = 0
        return out

    cdef int _line(self, char* base, Py_ssize_t start, Py_ssize_t end,
                   Py_ssize_t next, list out) except -1:
        # One complete line base[start:end]; its line end runs to base[next].
        cdef char* p = base + start
        cdef Py_ssize_t n = end - start
        cdef Py_ssize_t name_len
        cdef char* v
        cdef char* colon
        if n == 0:
            if self._pending:
                self._dispatch(base, next, out)
            # else: nothing pending; the bytes fold into the next event's raw
            return 0
        if p[0] == b':':
            return 0  # comment
        colon = <char*>memchr(p, b':', n)
        if colon == NULL:
            name_len = n
            v = p + n
        else:
            name_len = colon - p
            v = colon + 1
            if v < p + n and v[0] == b' ':
                v += 1
        if name_len == 4 and memcmp(p, b"data", 4) == 0:
            self._pending = True
            if self._ndata == 0:
                self._d0 = v - base
                self._d1 = end
            else:
                if self._ndata == 1:
                    self._data = PyByteArray_FromStringAndSize(base + self._d0, self._d1 - self._d0)
                _append(self._data, b"\n", 1)
                _append(self._data, v, p + n - v)
            self._ndata += 1
        elif name_len == 5 and memcmp(p, b"event", 5) == 0:
            self._pending = True
            self._event = PyUnicode_DecodeUTF8(v, p + n - v, "replace")
        elif name_len == 2 and memcmp(p, b"id", 2) == 0:
            self._pending = True
            self._id = PyUnicode_DecodeUTF8(v, p + n - v, "replace")
        # retry and unknown fields are ignored and do not start an event
        return 0

    cdef int _dispatch(self, char* base, Py_ssize_t end, list out) except -1:
        cdef Event ev
        if end - self._start > self._max:
            raise SSEError(f"SSE event larger than {self._max} bytes")
        ev = Event.__new__(Event)
        ev.event = self._event
        ev.id = self._id
        if self._ndata == 0:
            ev.data = b""
        elif self._ndata == 1:
            ev.data = PyBytes_FromStringAndSize(base + self._d0, self._d1 - self._d0)
        else:
            ev.data = PyBytes_FromStringAndSize(
                PyByteArray_AS_STRING(self._data), PyByteArray_GET_SIZE(self._data))
            self._data = None
        ev.raw = PyBytes_FromStringAndSize(base + self._start, end - self._start)
        out.append(ev)
        self._start = end
        self._pending = False
        self._event = None
        self._id = None
        self._ndata = 0
        return 0

    cpdef close(self):
        cdef char* base = PyByteArray_AS_STRING(self._buf)
        cdef Py_ssize_t size = PyByteArray_GET_SIZE(self._buf)
        if self._pending:
            raise SSEError("SSE stream ended inside an event")
        if self._pos < size and base[self._pos] != b':' and not _all_space(
                base + self._pos, size - self._pos):
            raise SSEError("SSE stream ended inside an event")
        return None


cdef class NDJSONDecoder:
    """for line in decoder.feed(chunk): ...; lines = decoder.close()"""

    def __init__(self, Py_ssize_t max_line_bytes=1 << 20):
        self._max = _limit(max_line_bytes, "max_line_bytes")
        self._buf = bytearray()
        self._scan = 0

    cpdef list feed(self, bytes chunk):
        cdef list out = []
        cdef Py_ssize_t size, pos = 0, le, end
        cdef char* base
        cdef const char* r
        if not _take(self._buf, chunk):
            return out
        base = PyByteArray_AS_STRING(self._buf)  # valid until the `del` below
        size = PyByteArray_GET_SIZE(self._buf)
        while True:
            r = <const char*>memchr(base + self._scan, b'\n', size - self._scan)
            if r == NULL:
                self._scan = size
                break
            le = r - base
            end = le
            if end > pos and base[end - 1] == b'\r':
                end -= 1
            if end - pos > self._max:
                raise SSEError(f"NDJSON line larger than {self._max} bytes")
            if not _all_space(base + pos, end - pos):
                out.append(PyBytes_FromStringAndSize(base + pos, end - pos))
            pos = self._scan = le + 1
        if size - pos > self._max:
            raise SSEError(f"NDJSON line larger than {self._max} bytes")
        if pos:
            del self._buf[:pos]
            self._scan -= pos
        return out

    cpdef list close(self):
        cdef char* base = PyByteArray_AS_STRING(self._buf)
        cdef Py_ssize_t end = PyByteArray_GET_SIZE(self._buf)
        cdef bytes line
        if end and base[end - 1] == b'\r':
            end -= 1
        if _all_space(base, end):
            line = None
        else:
            line = PyBytes_FromStringAndSize(base, end)
        self._buf = bytearray()
        self._scan = 0
        return [] if line is None else [line]


cdef inline bint _is_ws(char c) noexcept nogil:
    return c == b' ' or c == b'\t' or c == b'\n' or c == b'\r'


cdef bint _looks_like_object(bytes data):
    # A watcher parses only the events it must; the others are checked to be
    # shaped like a JSON object, so garbage is still caught.
    cdef const char* p = data
    cdef Py_ssize_t a = 0
    cdef Py_ssize_t b = len(data)
    while a < b and _is_ws(p[a]):
        a += 1
    while b > a and _is_ws(p[b - 1]):
        b -= 1
    return b - a >= 2 and p[a] == b'{' and p[b - 1] == b'}'


cdef class Framed:
    """What reads a backend's stream of events shares: the SSE decoder, the
    JSON of an event, and the three ways reading ends: the answer's end
    (``done``), the backend's error event (``error``), bytes that are not the
    protocol (``invalid``, why)."""

    cdef bint _stopped(self):
        return self.done or self.error is not None or self.invalid is not None

    cdef list _events(self, bytes chunk):
        """The SSE events ``chunk`` completes; None when the bytes are not SSE."""
        try:
            return self._sse.feed(chunk)
        except SSEError as exc:
            self.invalid = str(exc)
            return None

    cdef bint _close_sse(self):
        """At EOF: False, ``invalid`` set, when the stream was cut inside an event."""
        try:
            self._sse.close()
        except SSEError as exc:
            if self.invalid is None:
                self.invalid = str(exc)
            return False
        return True

    cdef dict _object(self, bytes data, str what):
        """The JSON object ``data`` holds; None, ``invalid`` set, when it holds
        none (``what``: "an event", "a line")."""
        cdef object obj
        try:
            obj = _loads(data)
        except _JSONDecodeError:
            self.invalid = f"{what} is not valid JSON"
            return None
        if not isinstance(obj, dict):
            self.invalid = f"{what} is not a JSON object"
            return None
        return obj


cdef class Watch(Framed):
    """A stream forwarded as it is, watched (``anthropic.MessagesWatch``,
    ``responses_watch.ResponsesWatch``): each event goes out as the upstream's
    own bytes, one read's events as one chunk. Only the events a subclass names
    in ``_parse`` are parsed and given to ``_seen`` (which reads the usage, or
    sets ``error`` and stops); the others are checked to be shaped like a JSON
    object. The ``_opening`` events wait for the first other one, so that an
    error right after them leaves nothing sent and gw free to retry; an event
    in ``_ends`` ends the stream."""

    def __init__(self, frozenset parse not None, frozenset opening not None, frozenset ends not None):
        self._sse = SSEDecoder()
        self._parse = parse
        self._opening = opening
        self._ends = ends
        self._held = []

    cpdef bytes feed(self, bytes chunk):
        cdef list out = []
        cdef list events
        cdef Event event
        cdef object name
        cdef dict obj
        events = self._events(chunk)
        if events is None:
            return b""
        for event in events:
            name = event.event
            if not _looks_like_object(event.data):
                self.invalid = "an event is not a JSON object"
                break
            if name is None or name in self._parse:
                obj = self._object(event.data, "an event")
                if obj is None:
                    break
                if name is None:
                    name = obj.get("type")
                    if not isinstance(name, str):
                        name = None
                if self._seen(name, obj):
                    break
            if self._held is not None:
                if name in self._opening:
                    self._held.append(event.raw)
                    continue
                out.extend(self._held)
                self._held = None
            if name in self._ends:
                self.done = True
                forward_last(out, event)
                break
            out.append(event.raw)
        return joined(out)

    cpdef bytes close(self):
        """At EOF: notes a stream cut inside an event."""
        self._close_sse()
        return b""

    cdef bint _seen(self, object name, dict obj) except -1:
        """A parsed event: True when reading stops (``error`` set)."""
        return False
