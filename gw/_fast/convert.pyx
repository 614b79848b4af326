# cython: language_level=3
"""OpenAI wire helpers shared by every protocol module: stream events, usage, errors.

Each other protocol has a module of its own (``anthropic``, ``gemini``,
``ollama``) that builds on these.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memchr, memcmp, memcpy

import orjson

from .sse cimport Event, SSEDecoder
from .sse import SSEError

_dumps = orjson.dumps
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError

DONE_EVENT = b"data: [DONE]\n\n"


class InvalidInput(ValueError):
    """A client request that cannot be converted; the message is for the client (400).

    ``param`` names the offending field (``messages[2].content[0].image_url``).
    """

    def __init__(self, message, param=None):
        super().__init__(message)
        self.message = message
        self.param = param


cpdef dict make_usage(long long uncached, long long completion,
                      long long cache_read=0, long long cache_write=0):
    """OpenAI usage counted one way for every backend.

    prompt_tokens = uncached + cache_read + cache_write input tokens;
    prompt_tokens_details.cached_tokens = cache_read; total = prompt + completion.
    """
    cdef long long prompt = uncached + cache_read + cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read},
    }

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


cpdef bytes chunk_event(str id, long long created, str model, dict delta,
                        object finish_reason=None, int index=0):
    """The `data: {...}\\n\\n` event of one chat.completion.chunk with one choice."""
    return sse_data(_dumps({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{
            "index": index,
            "delta": delta,
            "logprobs": None,
            "finish_reason": finish_reason,
        }],
    }))


cpdef bytes usage_event(str id, long long created, str model, dict usage):
    """The event of the usage chunk (`choices: []`) sent just before [DONE]."""
    return sse_data(_dumps({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage,
    }))


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


cdef class OpenAIStream:
    """Watches an OpenAI-compatible upstream stream on its way to the client.

    Each event goes out as the upstream's own bytes; only events that may carry
    usage, an error or a finish_reason are parsed (see ``classify_chunk``).
    """

    def __init__(self, bint forward_usage):
        self._decoder = SSEDecoder()
        self._forward_usage = forward_usage
        self.usage = None
        self.error = None
        self.invalid = None
        self.done = False
        self.finished = False

    cpdef bytes feed(self, bytes chunk):
        cdef list events
        cdef list out = []
        cdef Event event
        cdef int flags
        cdef object obj, usage, choices, choice
        try:
            events = self._decoder.feed(chunk)
        except SSEError as exc:
            self.invalid = str(exc)
            return b""
        for event in events:
            flags = classify_chunk(event.data)
            if flags & _IS_DONE:
                self.done = True
                out.append(event.raw)
                # A CR that ended the read ended the event; its LF, if any,
                # is still upstream, and nothing is read after [DONE].
                if event.raw.endswith(b"\r"):
                    out.append(b"\n")
                break
            if flags & _NOT_OBJECT:
                self.invalid = "an event is not a JSON object"
                break
            if flags & (_MAY_HAVE_USAGE | _MAY_HAVE_ERROR | _MAY_HAVE_FINISH):
                try:
                    obj = _loads(event.data)
                except _JSONDecodeError:
                    self.invalid = "an event is not valid JSON"
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
        if not out:
            return b""
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    cpdef bytes close(self):
        """At the upstream's EOF: note a stream cut inside an event.

        A finished stream without ``[DONE]`` (some compatible servers end so)
        gets one, and counts as done.
        """
        try:
            self._decoder.close()
        except SSEError as exc:
            if self.invalid is None:
                self.invalid = str(exc)
            return b""
        if self.finished and not self.done:
            self.done = True
            return DONE_EVENT
        return b""


# ------------------------------------------------ legacy completions on chat backends

# Completion fields a chat request takes under the same name.
_COMPLETION_SHARED = ("max_tokens", "temperature", "top_p", "n", "stop", "presence_penalty",
                      "frequency_penalty", "seed", "user", "logit_bias", "stream", "stream_options")


cpdef dict completion_to_chat(dict body):
    """A legacy completions request as a chat request with one user message.

    For backends that only chat. ``echo``, ``suffix``, ``best_of`` and
    ``logprobs`` have no chat equivalent: asking for them is a 400.
    """
    cdef object prompt = body.get("prompt")
    cdef dict chat
    cdef str name
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise InvalidInput(
                "this model's backend only chats: 'prompt' must be one string", "prompt")
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise InvalidInput("'prompt' must be a string", "prompt")
    for name, unsupported in (("suffix", bool(body.get("suffix"))),
                              ("echo", body.get("echo") is True),
                              ("best_of", body.get("best_of") not in (None, 1)),
                              ("logprobs", body.get("logprobs") is not None)):
        if unsupported:
            raise InvalidInput(f"'{name}' is not supported by this model's backend (it only chats)", name)
    chat = {"model": body.get("model"), "messages": [{"role": "user", "content": prompt}]}
    for name in _COMPLETION_SHARED:
        if name in body:
            chat[name] = body[name]
    return chat


cdef dict _completion_choice(object choice, object text):
    return {
        "text": text,
        "index": choice.get("index", 0),
        "logprobs": None,
        "finish_reason": choice.get("finish_reason"),
    }


cdef inline str _id_of(object chat_id):
    if isinstance(chat_id, str) and chat_id.startswith("chatcmpl-"):
        return "cmpl-" + chat_id[9:]
    return chat_id


cpdef dict chat_to_completion(dict answer):
    """A chat.completion answer as a legacy ``text_completion``."""
    cdef list choices = []
    cdef object choice, message, text
    for choice in answer.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        text = message.get("content") if isinstance(message, dict) else None
        choices.append(_completion_choice(choice, text if isinstance(text, str) else ""))
    out = {
        "id": _id_of(answer.get("id")),
        "object": "text_completion",
        "created": answer.get("created"),
        "model": answer.get("model"),
        "choices": choices,
    }
    if answer.get("usage") is not None:
        out["usage"] = answer["usage"]
    return out


cdef class CompletionStream:
    """Chat chunk events in, legacy ``text_completion`` events out.

    Fed the OpenAI SSE bytes an adapter yields (so always well-formed: adapters
    raise on upstream errors instead of yielding them). The role-only first
    chunk and empty deltas produce nothing.
    """

    cdef SSEDecoder _decoder

    def __init__(self):
        self._decoder = SSEDecoder()

    cpdef bytes feed(self, bytes chunk):
        cdef list out = []
        cdef Event event
        cdef object obj, choice, delta, text
        cdef list choices
        for event in self._decoder.feed(chunk):
            if classify_chunk(event.data) & _IS_DONE:
                out.append(DONE_EVENT)
                continue
            obj = _loads(event.data)
            choices = []
            for choice in obj.get("choices") or ():
                delta = choice.get("delta") or {}
                text = delta.get("content")
                if not isinstance(text, str):
                    text = ""
                if text or choice.get("finish_reason") is not None:
                    choices.append(_completion_choice(choice, text))
            if not choices and obj.get("usage") is None:
                continue
            result = {
                "id": _id_of(obj.get("id")),
                "object": "text_completion",
                "created": obj.get("created"),
                "model": obj.get("model"),
                "choices": choices,
            }
            if obj.get("usage") is not None:
                result["usage"] = obj["usage"]
            out.append(sse_data(_dumps(result)))
        return b"".join(out)
