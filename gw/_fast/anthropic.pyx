# cython: language_level=3
"""Anthropic Messages <-> OpenAI Chat Completions: requests, answers, streams.

``chat_request`` turns an OpenAI body into a ``POST /v1/messages`` body.
``AnthropicDecoder`` turns Anthropic's SSE events, and ``read_answer`` a whole
Anthropic ``message``, into the events of ``events.Sink``, for any client
encoder (``chat``, ``completions``, ``messages``). ``MessagesWatch`` watches an
Anthropic stream that is forwarded as it is (``/v1/messages`` to an Anthropic
backend). What maps to what, and what is dropped, is the conversion table in
the README ("Anthropic").
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memcmp

import orjson

from .rules import InvalidInput
from .events cimport Decoder, Sink
from .rules cimport (add_turn, content_parts, count, data_url, effort, file_data, finish_reason, functions, image_url, invalid, is_link,
                     make_usage, max_tokens, new_id, options, part_text, part_type, tool_calls, tool_choice, where)
from .sse cimport Event, Framed, SSEDecoder, Watch, forward_last, joined

_dumps = orjson.dumps

# ------------------------------------------------------------------ constants

# Anthropic stop_reason -> OpenAI finish_reason (rules.finish_reason); what is
# not here is "stop".
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}

_TOOL_CHOICE = {"auto": "auto", "required": "any", "none": "none"}

_IMAGE_URL = "must be a base64 data URL (data:<media type>;base64,...) or an http(s) URL"


cdef dict _cached(dict block, object part):
    # a part's cache_control rides on its block
    cdef object cache = (<dict>part).get("cache_control")
    if isinstance(cache, dict):
        block["cache_control"] = cache
    return block


cdef dict _image_block(object part, Py_ssize_t i, Py_ssize_t j):
    cdef str url
    cdef object parsed
    url, parsed = image_url(part.get("image_url"), where(i, f".content[{j}].image_url"))
    if parsed is not None and parsed[0]:
        return _cached({"type": "image", "source": {"type": "base64", "media_type": parsed[0],
                                                    "data": parsed[1]}}, part)
    if parsed is None and is_link(url, False):
        return _cached({"type": "image", "source": {"type": "url", "url": url}}, part)
    raise invalid(where(i, f".content[{j}].image_url.url"), _IMAGE_URL)


cdef dict _document_block(object part, Py_ssize_t i, Py_ssize_t j):
    cdef str mime, data
    mime, data = file_data(part.get("file"), where(i, f".content[{j}].file.file_data"), "Anthropic")
    return {"type": "document", "source": {"type": "base64", "media_type": mime, "data": data}}


cdef list _blocks(object content, Py_ssize_t i, bint media, str role):
    """An OpenAI message content as Anthropic blocks; empty texts are left out
    (Anthropic refuses empty text blocks). ``media``: images and files allowed."""
    cdef list blocks = []
    cdef Py_ssize_t j = 0
    cdef object part, kind
    cdef str text
    for part in content_parts(content, where(i, ".content")):
        kind = part_type(part)
        if kind == "text" or kind == "refusal":
            text = part_text(part, kind, where(i, f".content[{j}]"))
            if text:
                blocks.append(_cached({"type": "text", "text": text}, part))
        elif media and kind == "image_url":
            blocks.append(_image_block(part, i, j))
        elif media and kind == "file":
            blocks.append(_document_block(part, i, j))
        elif media:
            raise invalid(where(i, f".content[{j}].type"),
                          f"{kind!r} is not supported for Anthropic (text, image_url and file are)")
        else:
            raise invalid(where(i, f".content[{j}]"), f"must be a text part: {role} messages take only text")
        j += 1
    return blocks


cdef list _assistant_blocks(dict message, Py_ssize_t i):
    cdef list blocks = _blocks(message.get("content"), i, False, "assistant")
    cdef object call, call_id
    cdef str name
    cdef dict args
    cdef Py_ssize_t j = 0
    if message.get("function_call") is not None:
        raise invalid(where(i, ".function_call"), "(legacy function calling) is not supported for Anthropic: use 'tool_calls'")
    for call, name, args in tool_calls(message.get("tool_calls"), i):
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise invalid(where(i, f".tool_calls[{j}].id"), "is required")
        blocks.append({"type": "tool_use", "id": call_id, "name": name, "input": args})
        j += 1
    return blocks


cdef dict _tool_result(dict message, Py_ssize_t i):
    cdef object call_id = message.get("tool_call_id")
    cdef object content = message.get("content")
    cdef dict block
    cdef list blocks
    if not isinstance(call_id, str) or not call_id:
        raise invalid(where(i, ".tool_call_id"), "is required")
    block = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, str):
        if content:
            block["content"] = content
    else:
        blocks = _blocks(content, i, True, "tool")
        if blocks:
            block["content"] = blocks
    return block


cdef list _tools(dict body):
    cdef list out = []
    cdef dict fn, decl
    cdef object params
    for fn in functions(body, "Anthropic", False):
        decl = {"name": fn["name"]}
        if "description" in fn:
            decl["description"] = fn["description"]
        params = fn.get("parameters")
        if not params:
            decl["input_schema"] = {"type": "object", "properties": {}}
        else:
            # Anthropic requires a schema of type object; OpenAI lets it be implied.
            decl["input_schema"] = params if "type" in params else {"type": "object", **params}
        out.append(decl)
    return out


# OpenAI's sampling fields Anthropic takes as they are (rules.options);
# temperature and max_tokens have rules of their own here.
_OPTIONS = (None, "top_p", "top_k", None, "stop_sequences", None, None, None)


cpdef dict chat_request(dict body, str model, long long default_max_tokens, bint stream=False):
    """An OpenAI Chat Completions body as an Anthropic Messages body.

    ``max_tokens`` is ``rules.max_tokens``: ``max_completion_tokens``, else
    ``max_tokens`` (else ``max_output_tokens``), else ``default_max_tokens``.
    Tool arguments, ``stop`` and data URLs follow ``rules`` too. Raises
    ``InvalidInput`` for what Anthropic cannot express (see the README table).
    """
    cdef list turns = []
    cdef list system = []
    cdef dict out = {"model": model}
    cdef dict message, choice
    cdef object messages = body.get("messages")
    cdef object role, value, entry, kind, name
    cdef list tools
    cdef Py_ssize_t i
    if not isinstance(messages, list):
        raise InvalidInput("'messages' must be an array", "messages")
    for i, entry in enumerate(messages):
        if not isinstance(entry, dict):
            raise invalid(where(i, ""), "must be an object")
        message = entry
        role = message.get("role")
        if role == "user":
            add_turn(turns, "user", "content", _blocks(message.get("content"), i, True, "user"))
        elif role == "assistant":
            add_turn(turns, "assistant", "content", _assistant_blocks(message, i))
        elif role == "tool":
            add_turn(turns, "user", "content", [_tool_result(message, i)])
        elif role == "system" or role == "developer":
            system.extend(_blocks(message.get("content"), i, False, role))
        elif role == "function":
            raise invalid(where(i, ".role"), "'function' (legacy function calling) is not supported for Anthropic: use 'tool'")
        else:
            raise invalid(where(i, ".role"), f"{role!r} is not supported")
    out["messages"] = turns
    if system:
        if len(system) == 1 and "cache_control" not in system[0]:
            out["system"] = system[0]["text"]
        else:
            out["system"] = system
    out["max_tokens"] = max_tokens(body, default_max_tokens)

    value = body.get("n")
    if value is not None and value != 1:
        raise InvalidInput("'n' must be 1: Anthropic answers with one choice", "n")
    value = body.get("temperature")
    if value is not None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InvalidInput("'temperature' must be a number", "temperature")
        # OpenAI's range is 0..2, Anthropic's 0..1.
        out["temperature"] = 0 if value < 0 else (1 if value > 1 else value)
    options(body, out, _OPTIONS)
    value = body.get("user")
    if value is not None:
        if not isinstance(value, str):
            raise InvalidInput("'user' must be a string", "user")
        out["metadata"] = {"user_id": value}

    if body.get("functions") is not None or body.get("function_call") is not None:
        value = "functions" if body.get("functions") is not None else "function_call"
        raise InvalidInput(f"'{value}' (legacy function calling) is not supported for Anthropic: use 'tools'", value)
    tools = _tools(body)
    if tools:
        out["tools"] = tools
        kind, name, _ = tool_choice(body)
        choice = None if kind is None else (
            {"type": "tool", "name": name} if name is not None else {"type": _TOOL_CHOICE[kind]})
        if body.get("parallel_tool_calls") is False:
            if choice is None:
                choice = {"type": "auto"}
            if choice["type"] != "none":
                choice["disable_parallel_tool_use"] = True
        if choice is not None:
            out["tool_choice"] = choice
    _thinking(body, out)
    if stream:
        out["stream"] = True
    return out


# OpenAI reasoning_effort -> extended thinking's budget_tokens (Anthropic's minimum
# is 1024); "none": no thinking.
_THINKING_BUDGET = {"none": 0, "minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}
# Refused with thinking on: sampling other than the defaults.
_NOT_WITH_THINKING = ("temperature", "top_p", "top_k")


cdef int _thinking(dict body, dict out) except -1:
    """``reasoning_effort`` as extended thinking: its budget stays under ``max_tokens``
    (thinking counts in it), so a max_tokens of 1024 or less leaves thinking off, as does
    a tool_choice that forces a tool (Anthropic refuses both together). With thinking
    on, the sampling fields Anthropic refuses with it are left out."""
    cdef object budget = effort(body, _THINKING_BUDGET)
    cdef long long limit
    cdef object choice
    if not budget:
        return 0
    limit = out["max_tokens"]
    choice = out.get("tool_choice")
    if limit <= 1024 or (isinstance(choice, dict) and (<dict>choice).get("type") in ("any", "tool")):
        return 0
    out["thinking"] = {"type": "enabled", "budget_tokens": min(<long long>budget, limit - 1)}
    for name in _NOT_WITH_THINKING:
        out.pop(name, None)
    return 0


# ------------------------------------------------------------------ answers

cpdef dict usage_from(object usage):
    """Anthropic ``usage`` as OpenAI usage (``make_usage``).

    ``input_tokens`` are the uncached ones: the prompt is input + cache read
    + cache creation tokens, and ``cached_tokens`` the cache reads.
    """
    if not isinstance(usage, dict):
        return make_usage(0, 0)
    return make_usage(
        count((<dict>usage).get("input_tokens")),
        count((<dict>usage).get("output_tokens")),
        count((<dict>usage).get("cache_read_input_tokens")),
        count((<dict>usage).get("cache_creation_input_tokens")),
    )


cdef inline object _answer_id(object message_id):
    # the id start() gets: the message's, or None
    if isinstance(message_id, str) and message_id:
        return message_id
    return None


cdef inline str _call_id(object value):
    if isinstance(value, str) and value:
        return <str>value
    return new_id("call_")


cdef inline str _name(object value):
    return <str>value if isinstance(value, str) else ""


cdef inline object _matched(object value):
    return value if isinstance(value, str) else None


cdef inline str _finish(object reason, bint has_tools):
    return finish_reason(_FINISH, reason if isinstance(reason, str) else None, has_tools)


cdef bint _content_block(Sink sink, dict block, int calls) except -1:
    """A content block's events (a whole answer's, or a stream's block start):
    text, reasoning, or a tool_use's tool_start (index ``calls``) and its
    ``input`` as one tool_args unless it is empty (a stream's is: the input
    comes in deltas). True for a tool_use. Redacted thinking and server-tool
    blocks are dropped."""
    cdef object kind = block.get("type")
    cdef object value
    if kind == "text":
        value = block.get("text")
        if isinstance(value, str) and value:
            sink.text(0, <str>value)
    elif kind == "thinking":
        value = block.get("thinking")
        if isinstance(value, str) and value:
            sink.reasoning(0, <str>value)
    elif kind == "tool_use":
        sink.tool_start(0, calls, _call_id(block.get("id")), _name(block.get("name")), None)
        value = block.get("input")
        if isinstance(value, dict) and value:
            sink.tool_args(0, calls, _dumps(value).decode())
        return True
    return False


cpdef read_answer(dict message, Sink sink):
    """The events of a whole Anthropic ``message`` on ``sink``: start, then
    text blocks (text), thinking blocks (reasoning) and ``tool_use`` blocks
    (tool_start, and the ``input`` as one tool_args unless it is empty) in
    order, usage, finish, end. Redacted thinking and server-tool blocks are
    dropped."""
    cdef object content = message.get("content")
    cdef object block
    cdef _Usage counts = _Usage()
    cdef int calls = 0
    sink.start(_answer_id(message.get("id")))
    if isinstance(content, list):
        for block in <list>content:
            if isinstance(block, dict) and _content_block(sink, <dict>block, calls):
                calls += 1
    counts.read(message.get("usage"))
    sink.usage(counts.input, counts.output, counts.cache_read, counts.cache_write, 0)
    sink.finish(0, _finish(message.get("stop_reason"), calls > 0), _matched(message.get("stop_sequence")))
    sink.end()


# ------------------------------------------------------------------ streams



# A text or thinking delta as Anthropic writes it (compact, keys in this
# order) whose string needs no unescaping is read without a JSON parse: most
# of a stream's events are these.
cdef bytes _DELTA_OPEN = b'{"type":"content_block_delta","index":'
cdef bytes _TEXT_MID = b',"delta":{"type":"text_delta","text":"'
cdef bytes _THINKING_MID = b',"delta":{"type":"thinking_delta","thinking":"'
cdef enum:
    _TEXT = 1
    _THINKING = 2


cdef int _plain_delta(bytes data, Py_ssize_t* start, Py_ssize_t* end) noexcept:
    """_TEXT or _THINKING when ``data`` is such a delta whose string is
    ``data[start:end]`` with no quote, backslash or control character in it;
    0 for anything else (parsed as JSON)."""
    cdef const char* p = PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t i = PyBytes_GET_SIZE(_DELTA_OPEN)
    cdef Py_ssize_t j, m
    cdef unsigned char c
    cdef int kind
    if n < i + 4 or memcmp(p, PyBytes_AS_STRING(_DELTA_OPEN), i) != 0:
        return 0
    if memcmp(p + n - 3, b'"}}', 3) != 0:
        return 0
    j = i
    while j < n and b'0' <= p[j] <= b'9':
        j += 1
    if j == i or (p[i] == b'0' and j > i + 1):
        return 0
    m = PyBytes_GET_SIZE(_TEXT_MID)
    if n - 3 - j >= m and memcmp(p + j, PyBytes_AS_STRING(_TEXT_MID), m) == 0:
        kind = _TEXT
    else:
        m = PyBytes_GET_SIZE(_THINKING_MID)
        if n - 3 - j >= m and memcmp(p + j, PyBytes_AS_STRING(_THINKING_MID), m) == 0:
            kind = _THINKING
        else:
            return 0
    j += m
    start[0] = j
    while j < n - 3:
        c = <unsigned char>p[j]
        if c == b'"' or c == b'\\' or c < 0x20:
            return 0
        j += 1
    end[0] = j
    return kind


cdef inline void _take(dict usage, str key, long long* slot):
    # a count that is there replaces the one kept; null or a non-integer does not
    cdef object value = usage.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        slot[0] = count(value)


cdef class _Usage:
    """Anthropic's token counts as a stream reports them: the input side in
    ``message_start``, the output (cumulative) in each ``message_delta``."""

    cdef bint read(self, object usage):
        """Takes the counts of a ``usage`` object; False when it is not one."""
        if not isinstance(usage, dict):
            return False
        self.seen = True
        # message_delta may repeat the input counts (server tools): take each
        # count that is there, keep the others.
        _take(<dict>usage, "input_tokens", &self.input)
        _take(<dict>usage, "output_tokens", &self.output)
        _take(<dict>usage, "cache_read_input_tokens", &self.cache_read)
        _take(<dict>usage, "cache_creation_input_tokens", &self.cache_write)
        return True

    cdef object openai(self):
        if not self.seen:
            return None
        return make_usage(self.input, self.output, self.cache_read, self.cache_write)


cdef class AnthropicDecoder(Decoder):
    """Anthropic Messages SSE bytes in, ``events.Sink`` calls out:

        dec = AnthropicDecoder(sink)
        dec.feed(chunk)      # calls sink.start/text/reasoning/tool_start/tool_args/usage/finish/end
        dec.close()          # at EOF

    ``message_start`` gives start (the message id) and usage; text blocks and
    ``text_delta`` text; thinking blocks and ``thinking_delta`` reasoning;
    ``tool_use`` blocks tool_start (indexed 0, 1, 2... whatever their block
    index) and their ``input_json_delta`` tool_args (a block that brings a
    non-empty ``input`` whole: one tool_args); ``message_delta`` usage and,
    with its first ``stop_reason``, finish; ``message_stop`` end. Signature,
    citation and server-tool deltas, pings and unknown events are ignored.
    ``error``: the object of an ``error`` event; ``invalid``: why the bytes
    are not the protocol; either stops the decoding, as ``done`` does.
    """

    def __init__(self, Sink sink not None):
        Decoder.__init__(self, sink)
        self._sse = SSEDecoder()
        self._tools = {}
        self._usage = _Usage()

    @property
    def usage(self):
        """OpenAI usage so far (``make_usage``), or None before any came."""
        return self._usage.openai()

    cpdef feed(self, bytes chunk):
        cdef list events = self._events(chunk)
        cdef Event event
        cdef object obj, kind, delta, value
        cdef Sink sink = self._sink
        cdef bytes data
        cdef Py_ssize_t a = 0, b = 0
        cdef int plain
        cdef str text
        if events is None:
            return
        for event in events:
            if event.event == "ping":
                continue
            data = event.data
            plain = _plain_delta(data, &a, &b)
            if plain:
                if not self._started:
                    self.invalid = "content before message_start"
                    return
                if a == b:
                    continue
                try:
                    text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(data) + a, b - a, NULL)
                except UnicodeDecodeError:
                    text = None  # not JSON either: the parse below says so
                if text is not None:
                    if plain == _TEXT:
                        sink.text(0, text)
                    else:
                        sink.reasoning(0, text)
                    continue
            obj = self._object(data, "an event")
            if obj is None:
                return
            kind = (<dict>obj).get("type")
            if kind is None:
                kind = event.event
            if not self._started and (kind == "content_block_delta" or kind == "content_block_start"
                                      or kind == "message_delta"):
                self.invalid = ("message_delta" if kind == "message_delta" else "content") + " before message_start"
                return
            if kind == "content_block_delta":
                delta = (<dict>obj).get("delta")
                if not isinstance(delta, dict):
                    continue
                kind = (<dict>delta).get("type")
                if kind == "text_delta":
                    value = (<dict>delta).get("text")
                    if isinstance(value, str) and value:
                        sink.text(0, <str>value)
                elif kind == "input_json_delta":
                    value = (<dict>delta).get("partial_json")
                    if isinstance(value, str) and value:
                        kind = self._tools.get((<dict>obj).get("index"))
                        if kind is not None:
                            sink.tool_args(0, <int>kind, <str>value)
                elif kind == "thinking_delta":
                    value = (<dict>delta).get("thinking")
                    if isinstance(value, str) and value:
                        sink.reasoning(0, <str>value)
                # signature_delta, citations_delta: dropped
            elif kind == "content_block_start":
                self._block_start(<dict>obj)
            elif kind == "content_block_stop":
                pass
            elif kind == "message_start":
                self._message_start(<dict>obj)
            elif kind == "message_delta":
                self._message_delta(<dict>obj)
            elif kind == "message_stop":
                if not self._finished:
                    self.invalid = "message_stop without a stop_reason"
                    return
                self.done = True
                sink.end()
                return
            elif kind == "error":
                value = (<dict>obj).get("error")
                self.error = value if value is not None else obj
                return
            # event types newer than this code: ignored

    cdef int _message_start(self, dict obj) except -1:
        cdef object message = obj.get("message")
        if self._started:
            return 0
        if not isinstance(message, dict):
            message = {}
        self._started = True
        self.id = _answer_id((<dict>message).get("id"))
        self._sink.start(self.id)
        self._usage_of((<dict>message).get("usage"))
        return 0

    cdef int _usage_of(self, object usage) except -1:
        cdef _Usage counts = self._usage
        if counts.read(usage):
            self._sink.usage(counts.input, counts.output, counts.cache_read, counts.cache_write, 0)
        return 0

    cdef int _block_start(self, dict obj) except -1:
        cdef object block = obj.get("content_block")
        if isinstance(block, dict) and _content_block(self._sink, <dict>block, self._calls):
            self._tools[obj.get("index")] = self._calls
            self._calls += 1
        return 0

    cdef int _message_delta(self, dict obj) except -1:
        cdef object delta = obj.get("delta")
        cdef object reason
        self._usage_of(obj.get("usage"))
        if self._finished or not isinstance(delta, dict):
            return 0
        reason = (<dict>delta).get("stop_reason")
        if reason is None:
            return 0
        self._finished = True
        self._sink.finish(0, _finish(reason, self._calls > 0), _matched((<dict>delta).get("stop_sequence")))
        return 0

    cpdef close(self):
        """At EOF: notes a stream cut inside an event in ``invalid``. A stream
        that ends without ``message_stop`` is not ``done``."""
        if not self.done:
            self._close_sse()


cdef class MessagesWatch(Watch):
    """Watches an Anthropic Messages stream forwarded as it is (``/v1/messages``,
    ``sse.Watch``): ``message_start`` and ``message_delta`` (usage) and
    ``error`` are parsed; an ``error`` event is kept back (gw sends its own),
    ``message_stop`` ends the stream. ``message_start`` and pings wait for the
    first block, so an error right after them is still retryable.
    """

    cdef _Usage _usage

    def __init__(self):
        Watch.__init__(self, _WATCH_PARSE, _WATCH_OPENING, _WATCH_ENDS)
        self._usage = _Usage()

    @property
    def usage(self):
        """OpenAI usage so far (``make_usage``), or None before message_start."""
        return self._usage.openai()

    cdef bint _seen(self, object name, dict obj) except -1:
        cdef object message
        if name == "message_start":
            message = obj.get("message")
            if isinstance(message, dict):
                self._usage.read(message.get("usage"))
        elif name == "message_delta":
            self._usage.read(obj.get("usage"))
        elif name == "error":
            self.error = obj.get("error") if obj.get("error") is not None else obj
            return True
        return False


cdef frozenset _WATCH_PARSE = frozenset({"message_start", "message_delta", "error"})
cdef frozenset _WATCH_OPENING = frozenset({"message_start", "ping"})
cdef frozenset _WATCH_ENDS = frozenset({"message_stop"})
