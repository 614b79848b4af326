# cython: language_level=3
"""OpenAI wire helpers: the pass-through watcher (``OpenAIStream``), its byte
scan (``classify_chunk``), ``sse_data`` and ``error_event``.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memchr, memcmp, memcpy

import orjson

from .sse cimport Event, Framed, SSEDecoder, forward_last, joined

_dumps = orjson.dumps

DONE_EVENT = b"data: [DONE]\n\n"


IS_DONE = _IS_DONE
MAY_HAVE_USAGE = _MAY_HAVE_USAGE
MAY_HAVE_ERROR = _MAY_HAVE_ERROR
MAY_HAVE_FINISH = _MAY_HAVE_FINISH
NOT_OBJECT = _NOT_OBJECT


cpdef bytes sse_data(bytes payload):
    """sse_data(b'{"a":1}') -> b'data: {"a":1}\\n\\n'"""
    cdef Py_ssize_t n
    cdef bytes out
    cdef char* p
    if payload is None:
        raise TypeError("sse_data() takes bytes, not None")
    n = PyBytes_GET_SIZE(payload)
    out = PyBytes_FromStringAndSize(NULL, n + 8)
    p = PyBytes_AS_STRING(out)
    memcpy(p, b"data: ", 6)
    memcpy(p + 6, PyBytes_AS_STRING(payload), n)
    p[n + 6] = b'\n'
    p[n + 7] = b'\n'
    return out


cpdef bytes error_event(dict error):
    """The `data: {"error": {...}}\\n\\n` event sent when a started stream fails."""
    return sse_data(_dumps({"error": error}))


cdef inline bint _is_ws(char c) noexcept nogil:
    # JSON whitespace
    return c == b' ' or c == b'\t' or c == b'\n' or c == b'\r'


cdef inline const char* _value_after_key(const char* p, const char* end) noexcept nogil:
    # p is just past a key's closing quote: skip ws ':' ws and return the
    # value's first byte, or NULL if no ':' follows or the data ends.
    while p < end and _is_ws(p[0]):
        p += 1
    if p == end or p[0] != b':':
        return NULL
    p += 1
    while p < end and _is_ws(p[0]):
        p += 1
    return p if p < end else NULL


cpdef int classify_chunk(bytes data) except -1:
    """Flags of one OpenAI SSE `data` payload, from a byte scan (no JSON parse).

    classify_chunk(b' [DONE] ') == IS_DONE
    classify_chunk(b'{"choices":[],"usage":{"total_tokens":3}}') == MAY_HAVE_USAGE
    """
    # Inside a JSON string every quote is escaped, so `"usage"` with both
    # quotes bare, followed by ':', can only be an object key: text such as
    # `\"usage\":{` inside a content string never matches. Callers confirm a
    # flag with orjson, so a false positive only costs one parse, while a
    # chunk without flags (almost every content delta) is never parsed.
    cdef const char* start
    cdef const char* end
    cdef const char* p
    cdef const char* q
    cdef const char* v
    cdef int flags = 0
    if data is None:
        raise TypeError("classify_chunk() takes bytes, not None")
    start = PyBytes_AS_STRING(data)
    end = start + PyBytes_GET_SIZE(data)
    p = start

    while p < end and _is_ws(p[0]):
        p += 1
    q = end
    while q > p and _is_ws(q[-1]):
        q -= 1
    if q - p == 6 and memcmp(p, b"[DONE]", 6) == 0:
        return _IS_DONE
    if q - p < 2 or p[0] != b'{' or q[-1] != b'}':
        return _NOT_OBJECT

    while True:
        # p: the next byte that may open a key
        p = <const char*>memchr(p, b'"', end - p)
        if p == NULL:
            break
        p += 1
        v = NULL
        # Each test reads at most 14 bytes past p, guarded by the length check.
        if end - p >= 6 and p[0] == b'u' and memcmp(p, b"usage\"", 6) == 0:
            v = _value_after_key(p + 6, end)
            if v != NULL and v[0] == b'{':
                flags |= _MAY_HAVE_USAGE
        elif end - p >= 6 and p[0] == b'e' and memcmp(p, b"error\"", 6) == 0:
            v = _value_after_key(p + 6, end)
            if v != NULL and (v[0] == b'{' or v[0] == b'"'):
                flags |= _MAY_HAVE_ERROR
        elif end - p >= 14 and p[0] == b'f' and memcmp(p, b"finish_reason\"", 14) == 0:
            v = _value_after_key(p + 14, end)
            if v != NULL and v[0] == b'"':
                flags |= _MAY_HAVE_FINISH
        if flags == _MAY_HAVE_USAGE | _MAY_HAVE_ERROR | _MAY_HAVE_FINISH:
            break
    return flags


cdef class OpenAIStream(Framed):
    """Watches an OpenAI-compatible upstream stream on its way to the client.

    Each event goes out as the upstream's own bytes; only events that may carry
    usage, an error or a finish_reason are parsed (see ``classify_chunk``).

    Azure's content-filter annotations are the exception. They are chunks whose
    ``object``, ``id`` and ``model`` are empty and ``created`` is 0: the prompt
    filter results that open an Azure stream (``"choices": []``) and, with its
    asynchronous filter, choices without a ``delta`` carrying
    ``content_filter_results``. A client that checks OpenAI's schema rejects
    them, so each goes out rewritten into the stream's own ``object``, ``id``,
    ``created`` and ``model`` (those of the first answer chunk, which an
    opening annotation waits for), a choice without ``delta`` (``text`` for
    completions) getting an empty one; what they say is kept. Annotations
    with no answer chunk after them (the stream ends or fails first) are dropped.
    Azure annotates a stream from its first event or not at all, so only such
    streams are searched for more: any other stream pays one byte search, on
    its first event.
    """

    def __init__(self, bint forward_usage):
        self._sse = SSEDecoder()
        self._forward_usage = forward_usage
        self._watch = True

    cpdef bytes feed(self, bytes chunk):
        cdef list events
        cdef list out = []
        cdef Event event
        cdef int flags
        cdef object obj, usage, choices, choice, held
        events = self._events(chunk)
        if events is None:
            return b""
        for event in events:
            flags = classify_chunk(event.data)
            if flags & _IS_DONE:
                self.done = True
                forward_last(out, event)
                break
            if flags & _NOT_OBJECT:
                self.invalid = "an event is not a JSON object"
                break
            obj = None
            if self._watch:
                if (self._held is not None and self._identity is None) or self._empty_object(event.data):
                    obj = self._object(event.data, "an event")
                    if obj is None:
                        break
                    if obj.get("object") == "":
                        self._annotation(obj, out)
                        continue
                if self._held is None:
                    self._watch = False     # the first event is no annotation: none will come
                elif self._identity is None and isinstance(obj.get("object"), str):
                    # The first answer chunk: the stream's own names, for the annotations.
                    self._identity = (obj["object"], obj.get("id"), obj.get("created"), obj.get("model"))
                    for held in self._held:
                        out.append(self._rewrite(held))
                    self._held = []
            if flags & (_MAY_HAVE_USAGE | _MAY_HAVE_ERROR | _MAY_HAVE_FINISH):
                if obj is None:
                    obj = self._object(event.data, "an event")
                    if obj is None:
                        break
                if flags & _MAY_HAVE_ERROR and obj.get("error") is not None:
                    self.error = obj["error"]
                    break
                choices = obj.get("choices")
                usage = obj.get("usage")
                if isinstance(usage, dict):
                    self.usage = usage
                    if not choices and not self._forward_usage:
                        continue
                if flags & _MAY_HAVE_FINISH and isinstance(choices, list):
                    for choice in choices:
                        if isinstance(choice, dict) and choice.get("finish_reason") is not None:
                            self.finished = True
            out.append(event.raw)
        return joined(out)

    cpdef bytes close(self):
        """At the upstream's EOF: note a stream cut inside an event.

        A finished stream without ``[DONE]`` (some compatible servers end so)
        gets one, and counts as done.
        """
        if not self._close_sse():
            return b""
        if self.finished and not self.done:
            self.done = True
            return DONE_EVENT
        return b""

    cdef bint _empty_object(self, bytes data) noexcept:
        """Whether ``data`` holds ``"object":""``, as Azure's compact JSON writes its annotations.

        In a JSON string every quote is escaped, so these bytes can only be a
        key and its empty value. ``j`` is rare outside the key ``object``: one
        memchr finds it (about 20 ns on a 250-byte chunk; ``in`` takes 200).
        """
        cdef const char* start = PyBytes_AS_STRING(data)
        cdef const char* end = start + PyBytes_GET_SIZE(data)
        cdef const char* p = start + 3     # the j of "object"
        if end - start < 11:
            return False
        while p < end:
            p = <const char*>memchr(p, b'j', end - p)
            # Reads p[-3] .. p[7]: within the data by the length check.
            if p == NULL:
                return False
            if end - p >= 8 and memcmp(p - 3, b'"object":""', 11) == 0:
                return True
            p += 1
        return False

    cdef int _annotation(self, dict obj, list out) except -1:
        """One of Azure's annotation chunks: out now if the stream's names are known, else held."""
        cdef object choice
        if self._held is None:
            self._held = []
        for choice in obj.get("choices") or ():
            # The async filter's last annotation may be what ends the answer.
            if isinstance(choice, dict) and choice.get("finish_reason") is not None:
                self.finished = True
        if self._identity is None:
            self._held.append(obj)
        else:
            out.append(self._rewrite(obj))
        return 0

    cdef bytes _rewrite(self, dict obj):
        """An annotation in the stream's own names, each choice with the field OpenAI requires."""
        cdef object choice, field, empty
        obj["object"], obj["id"], obj["created"], obj["model"] = self._identity
        if obj["object"] == "chat.completion.chunk":
            field, empty = "delta", {}
        elif obj["object"] == "text_completion":
            field, empty = "text", ""
        else:
            field = None
        if field is not None:
            for choice in obj.get("choices") or ():
                if isinstance(choice, dict) and field not in choice:
                    choice[field] = empty
        return sse_data(_dumps(obj))

