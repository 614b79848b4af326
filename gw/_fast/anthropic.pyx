# cython: language_level=3
"""Anthropic Messages <-> OpenAI Chat Completions: requests, answers, streams.

``chat_request`` turns an OpenAI body into a ``POST /v1/messages`` body,
``chat_answer`` an Anthropic ``message`` into a ``chat.completion``, and
``AnthropicStream`` is the push converter ``providers.base.pump`` drives over
Anthropic's SSE events. ``MessagesWatch`` watches an Anthropic stream that is
forwarded as it is (``/v1/messages`` to an Anthropic backend). What maps to
what, and what is dropped, is the conversion table in the README ("Anthropic").
"""

import os

import orjson

from .convert import DONE_EVENT, InvalidInput
from .convert cimport make_usage, usage_event
from .sse cimport Event, SSEDecoder
from .sse import SSEError

_dumps = orjson.dumps
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_urandom = os.urandom

# ------------------------------------------------------------------ constants

# Anthropic stop_reason -> OpenAI finish_reason; what is not here is "stop".
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

# Whole pieces of the chunk events the stream converter writes. The bytes are
# those chunk_event() (orjson, compact) gives for the same chunk; building them
# by concatenation spares a dict and a dumps of the envelope on every delta.
_CHUNK_MID = b',"object":"chat.completion.chunk","created":'
_CHUNK_MODEL = b',"model":'
_CHUNK_DELTA = b',"choices":[{"index":0,"delta":'
_CHUNK_OPEN = b'data: {"id":'
_TAIL_OPEN = b',"logprobs":null,"finish_reason":null}]}\n\n'
_CONTENT_OPEN = b'{"content":'
_ARGS_OPEN = b'{"tool_calls":[{"index":'
_ARGS_MID = b',"function":{"arguments":'
_ARGS_CLOSE = b'}}]}'
_EMPTY_ARGS = b'"{}"'
_ROLE_DELTA = b'{"role":"assistant","content":""}'
_FINISH_TAILS = {
    name: b'{},"logprobs":null,"finish_reason":' + _dumps(name) + b'}]}\n\n'
    for name in ("stop", "length", "tool_calls", "content_filter")
}


cdef str _where(Py_ssize_t i, str rest):
    return f"messages[{i}]{rest}"


cdef object _invalid(str param, str what):
    """InvalidInput("'<param>' <what>", param), for ``raise``."""
    return InvalidInput(f"'{param}' {what}", param)


# ------------------------------------------------------------------ request

cdef dict _text_block(str text, object part):
    cdef dict block = {"type": "text", "text": text}
    cdef object cache = part.get("cache_control") if part is not None else None
    if isinstance(cache, dict):
        block["cache_control"] = cache
    return block


cdef dict _image_block(object part, Py_ssize_t i, Py_ssize_t j):
    cdef str param = _where(i, f".content[{j}].image_url")
    cdef object image = part.get("image_url")
    cdef object url = image.get("url") if isinstance(image, dict) else image
    cdef str head, data, lower
    cdef dict block
    if not isinstance(url, str) or not url:
        raise _invalid(param + ".url", "must be a string")
    lower = url[:8].lower()
    if url.startswith("data:"):
        head, sep, data = url[5:].partition(",")
        if not sep or not head.endswith(";base64") or len(head) == 7:
            raise _invalid(param + ".url", "must be a base64 data URL (data:<media type>;base64,...) "
                                           "or an http(s) URL")
        block = {"type": "image", "source": {"type": "base64", "media_type": head[:-7], "data": data}}
    elif lower.startswith("https://") or lower.startswith("http://"):
        block = {"type": "image", "source": {"type": "url", "url": url}}
    else:
        raise _invalid(param + ".url", "must be a base64 data URL (data:<media type>;base64,...) "
                                       "or an http(s) URL")
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


cdef dict _document_block(object part, Py_ssize_t i, Py_ssize_t j):
    cdef str param = _where(i, f".content[{j}].file.file_data")
    cdef object file = part.get("file")
    cdef object data = file.get("file_data") if isinstance(file, dict) else None
    cdef str head, payload
    if not isinstance(data, str) or not data:
        raise InvalidInput(f"'{param}' is required: Anthropic needs the file inline (a base64 data URL); "
                           "'file_id' is not supported", param)
    if data.startswith("data:"):
        head, sep, payload = data[5:].partition(",")
        if not sep or not head.endswith(";base64"):
            raise _invalid(param, "must be a base64 data URL (data:application/pdf;base64,...)")
        media = head[:-7] or "application/pdf"
    else:
        media, payload = "application/pdf", data
    return {"type": "document", "source": {"type": "base64", "media_type": media, "data": payload}}


cdef list _blocks(object content, Py_ssize_t i, bint media, str role):
    """An OpenAI message content as Anthropic blocks; empty texts are left out
    (Anthropic refuses empty text blocks). ``media``: images and files allowed."""
    cdef list blocks = []
    cdef object part, kind, text
    cdef Py_ssize_t j
    if content is None:
        return blocks
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
        return blocks
    if not isinstance(content, list):
        raise _invalid(_where(i, ".content"), "must be a string or an array of content parts")
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" or kind == "refusal":
            text = part.get(kind)
            if not isinstance(text, str):
                raise _invalid(_where(i, f".content[{j}].{kind}"), "must be a string")
            if text:
                blocks.append(_text_block(text, part))
        elif media and kind == "image_url":
            blocks.append(_image_block(part, i, j))
        elif media and kind == "file":
            blocks.append(_document_block(part, i, j))
        elif media:
            raise _invalid(_where(i, f".content[{j}].type"),
                           f"{kind!r} is not supported for Anthropic (text, image_url and file are)")
        else:
            raise _invalid(_where(i, f".content[{j}]"), f"must be a text part: {role} messages take only text")
    return blocks


cdef dict _tool_input(object raw, str param):
    """OpenAI arguments (a JSON text) -> Anthropic ``input`` (an object)."""
    cdef object value
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        raise InvalidInput(f"'{param}' must be a JSON string", param)
    if not raw.strip():
        return {}
    try:
        value = _loads(raw)
    except _JSONDecodeError:
        raise InvalidInput(f"'{param}' is not valid JSON", param) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"'{param}' must be a JSON object for Anthropic", param)
    return value


cdef list _assistant_blocks(dict message, Py_ssize_t i):
    cdef list blocks = _blocks(message.get("content"), i, False, "assistant")
    cdef object calls = message.get("tool_calls")
    cdef object call, fn, name, call_id
    cdef Py_ssize_t j
    if message.get("function_call") is not None:
        raise _invalid(_where(i, ".function_call"), "(legacy function calling) is not supported for Anthropic: use 'tool_calls'")
    if calls is None:
        return blocks
    if not isinstance(calls, list):
        raise _invalid(_where(i, ".tool_calls"), "must be an array")
    for j, call in enumerate(calls):
        if not isinstance(call, dict) or call.get("type", "function") != "function":
            raise _invalid(_where(i, f".tool_calls[{j}]"), "must be a function tool call")
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise _invalid(_where(i, f".tool_calls[{j}].id"), "is required")
        fn = call.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise _invalid(_where(i, f".tool_calls[{j}].function.name"), "is required")
        blocks.append({
            "type": "tool_use",
            "id": call_id,
            "name": name,
            "input": _tool_input(fn.get("arguments"), _where(i, f".tool_calls[{j}].function.arguments")),
        })
    return blocks


cdef dict _tool_result(dict message, Py_ssize_t i):
    cdef object call_id = message.get("tool_call_id")
    cdef object content = message.get("content")
    cdef dict block
    cdef list blocks
    if not isinstance(call_id, str) or not call_id:
        raise _invalid(_where(i, ".tool_call_id"), "is required")
    block = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, str):
        if content:
            block["content"] = content
    else:
        blocks = _blocks(content, i, True, "tool")
        if blocks:
            block["content"] = blocks
    return block


cdef inline void _add_turn(list turns, str role, list blocks):
    # Anthropic wants user and assistant turns to alternate: same-role
    # neighbours (an assistant's tool results, several user messages) merge.
    cdef dict last
    if not blocks:
        return
    if turns:
        last = turns[-1]
        if last["role"] == role:
            last["content"].extend(blocks)
            return
    turns.append({"role": role, "content": blocks})


cdef list _tools(object tools):
    cdef list out = []
    cdef object tool, fn, name, params
    cdef dict decl
    cdef Py_ssize_t j
    if not isinstance(tools, list):
        raise InvalidInput("'tools' must be an array", "tools")
    for j, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise InvalidInput(f"'tools[{j}]': only function tools are supported for Anthropic", f"tools[{j}]")
        fn = tool.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"'tools[{j}].function.name' is required", f"tools[{j}].function.name")
        decl = {"name": name}
        if isinstance(fn.get("description"), str):
            decl["description"] = fn["description"]
        params = fn.get("parameters")
        if params is None or params == {}:
            decl["input_schema"] = {"type": "object", "properties": {}}
        elif isinstance(params, dict):
            # Anthropic requires a schema of type object; OpenAI lets it be implied.
            decl["input_schema"] = params if "type" in params else {"type": "object", **params}
        else:
            raise InvalidInput(f"'tools[{j}].function.parameters' must be an object",
                               f"tools[{j}].function.parameters")
        out.append(decl)
    return out


cdef dict _tool_choice(object choice):
    cdef object fn, name, kind
    if isinstance(choice, str):
        kind = _TOOL_CHOICE.get(choice)
        if kind is not None:
            return {"type": kind}
    elif isinstance(choice, dict):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if isinstance(name, str) and name:
            return {"type": "tool", "name": name}
    raise InvalidInput("'tool_choice' must be 'auto', 'none', 'required' or "
                       "{\"type\": \"function\", \"function\": {\"name\": ...}}", "tool_choice")


cdef object _max_tokens(dict body, long long default):
    cdef object value = body.get("max_completion_tokens")
    cdef str name = "max_completion_tokens"
    if value is None:
        value = body.get("max_tokens")
        name = "max_tokens"
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInput(f"'{name}' must be a positive integer", name)
    return value


cpdef dict chat_request(dict body, str model, long long default_max_tokens, bint stream=False):
    """An OpenAI Chat Completions body as an Anthropic Messages body.

    ``default_max_tokens`` is sent when the client gives neither
    ``max_completion_tokens`` nor ``max_tokens``. Raises ``InvalidInput`` for
    what Anthropic cannot express (see the README table).
    """
    cdef list turns = []
    cdef list system = []
    cdef dict out = {"model": model}
    cdef dict message, choice
    cdef object messages = body.get("messages")
    cdef object role, value, item, entry
    cdef str name
    cdef list tools
    cdef Py_ssize_t i
    if not isinstance(messages, list):
        raise InvalidInput("'messages' must be an array", "messages")
    for i, entry in enumerate(messages):
        if not isinstance(entry, dict):
            raise _invalid(_where(i, ""), "must be an object")
        message = entry
        role = message.get("role")
        if role == "user":
            _add_turn(turns, "user", _blocks(message.get("content"), i, True, "user"))
        elif role == "assistant":
            _add_turn(turns, "assistant", _assistant_blocks(message, i))
        elif role == "tool":
            _add_turn(turns, "user", [_tool_result(message, i)])
        elif role == "system" or role == "developer":
            system.extend(_blocks(message.get("content"), i, False, role))
        elif role == "function":
            raise _invalid(_where(i, ".role"), "'function' (legacy function calling) is not supported for Anthropic: use 'tool'")
        else:
            raise _invalid(_where(i, ".role"), f"{role!r} is not supported")
    out["messages"] = turns
    if system:
        if len(system) == 1 and "cache_control" not in system[0]:
            out["system"] = system[0]["text"]
        else:
            out["system"] = system
    out["max_tokens"] = _max_tokens(body, default_max_tokens)

    value = body.get("n")
    if value is not None and value != 1:
        raise InvalidInput("'n' must be 1: Anthropic answers with one choice", "n")
    value = body.get("temperature")
    if value is not None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InvalidInput("'temperature' must be a number", "temperature")
        # OpenAI's range is 0..2, Anthropic's 0..1.
        out["temperature"] = 0 if value < 0 else (1 if value > 1 else value)
    value = body.get("top_p")
    if value is not None:
        out["top_p"] = value
    value = body.get("top_k")
    if value is not None:
        out["top_k"] = value
    value = body.get("stop")
    if isinstance(value, str):
        out["stop_sequences"] = [value]
    elif isinstance(value, list):
        for item in value:
            if not isinstance(item, str):
                raise InvalidInput("'stop' must be a string or an array of strings", "stop")
        if value:
            out["stop_sequences"] = value
    elif value is not None:
        raise InvalidInput("'stop' must be a string or an array of strings", "stop")
    value = body.get("user")
    if value is not None:
        if not isinstance(value, str):
            raise InvalidInput("'user' must be a string", "user")
        out["metadata"] = {"user_id": value}

    if body.get("functions") is not None or body.get("function_call") is not None:
        name = "functions" if body.get("functions") is not None else "function_call"
        raise InvalidInput(f"'{name}' (legacy function calling) is not supported for Anthropic: use 'tools'", name)
    value = body.get("tools")
    if value is not None:
        tools = _tools(value)
        if tools:
            out["tools"] = tools
            value = body.get("tool_choice")
            choice = _tool_choice(value) if value is not None else None
            if body.get("parallel_tool_calls") is False:
                if choice is None:
                    choice = {"type": "auto"}
                if choice["type"] != "none":
                    choice["disable_parallel_tool_use"] = True
            if choice is not None:
                out["tool_choice"] = choice
    if stream:
        out["stream"] = True
    return out


# ------------------------------------------------------------------ answer

cdef inline long long _count(object usage, str key):
    cdef object value = usage.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return 0


cpdef dict usage_from(object usage):
    """Anthropic ``usage`` as OpenAI usage (``make_usage``).

    ``input_tokens`` are the uncached ones: the prompt is input + cache read
    + cache creation tokens, and ``cached_tokens`` the cache reads.
    """
    if not isinstance(usage, dict):
        return make_usage(0, 0)
    return make_usage(
        _count(usage, "input_tokens"),
        _count(usage, "output_tokens"),
        _count(usage, "cache_read_input_tokens"),
        _count(usage, "cache_creation_input_tokens"),
    )


cdef inline str _arguments(object value):
    # OpenAI clients json.loads the arguments: never an empty string.
    if not value:
        return "{}"
    return _dumps(value).decode()


cpdef str chat_id(object message_id):
    """The chat.completion id of an Anthropic message: ``chatcmpl-`` + its id."""
    if isinstance(message_id, str) and message_id:
        return "chatcmpl-" + message_id
    return "chatcmpl-" + _urandom(12).hex()


cpdef dict chat_answer(dict message, long long created, str model):
    """An Anthropic ``message`` as an OpenAI ``chat.completion``.

    Text blocks are joined into ``content`` (null when there is none but tool
    calls), ``tool_use`` blocks become ``tool_calls``, thinking and server-tool
    blocks are dropped.
    """
    cdef list texts = []
    cdef list calls = []
    cdef object block, kind, text, content, call_id, name
    cdef dict out_message
    cdef str finish
    content = message.get("content")
    if isinstance(content, list):
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text":
                text = block.get("text")
                if isinstance(text, str):
                    texts.append(text)
            elif kind == "tool_use":
                call_id = block.get("id")
                name = block.get("name")
                calls.append({
                    "id": call_id if isinstance(call_id, str) else "",
                    "type": "function",
                    "function": {
                        "name": name if isinstance(name, str) else "",
                        "arguments": _arguments(block.get("input")),
                    },
                })
    out_message = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        out_message["tool_calls"] = calls
    finish = _FINISH.get(message.get("stop_reason"), "stop")
    if calls and finish == "stop":
        finish = "tool_calls"
    return {
        "id": chat_id(message.get("id")),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": out_message, "logprobs": None, "finish_reason": finish}],
        "usage": usage_from(message.get("usage")),
    }


# ------------------------------------------------------------------ streams

cdef inline bint _is_ws(char c) noexcept nogil:
    return c == b' ' or c == b'\t' or c == b'\n' or c == b'\r'


cdef bint _looks_like_object(bytes data):
    # The pass-through watcher parses only the events it must; the others are
    # checked to be shaped like a JSON object, so garbage is still caught.
    cdef const char* p = data
    cdef Py_ssize_t n = len(data)
    cdef Py_ssize_t a = 0
    cdef Py_ssize_t b = n
    while a < b and _is_ws(p[a]):
        a += 1
    while b > a and _is_ws(p[b - 1]):
        b -= 1
    return b - a >= 2 and p[a] == b'{' and p[b - 1] == b'}'


cdef class _Usage:
    """Anthropic's token counts as a stream reports them: the input side in
    ``message_start``, the output (cumulative) in each ``message_delta``."""

    cdef long long input, output, cache_read, cache_write
    cdef bint seen

    cdef void read(self, object usage):
        cdef object value
        if not isinstance(usage, dict):
            return
        self.seen = True
        # message_delta may repeat the input counts (server tools): take each
        # count that is there, keep the others.
        value = usage.get("input_tokens")
        if isinstance(value, int):
            self.input = value
        value = usage.get("output_tokens")
        if isinstance(value, int):
            self.output = value
        value = usage.get("cache_read_input_tokens")
        if isinstance(value, int):
            self.cache_read = value
        value = usage.get("cache_creation_input_tokens")
        if isinstance(value, int):
            self.cache_write = value

    cdef object openai(self):
        if not self.seen:
            return None
        return make_usage(self.input, self.output, self.cache_read, self.cache_write)


cdef class _Tool:
    cdef int index          # the OpenAI tool call index: 0, 1, 2... in order
    cdef bint has_arguments # a non-empty arguments fragment went out


cdef class AnthropicStream:
    """Anthropic Messages SSE bytes in, OpenAI ``chat.completion.chunk`` events out.

    The first block (or the finish) gives the role chunk, text deltas content chunks,
    ``tool_use`` blocks tool call chunks (indexed 0, 1, 2... whatever their
    block index), ``message_delta`` the one finish chunk and ``message_stop``
    the usage chunk (if asked) and ``[DONE]``.
    """

    cdef SSEDecoder _decoder
    cdef long long _created
    cdef str _model
    cdef bint _include_usage
    cdef str _id
    cdef bytes _head        # every chunk event up to its delta object
    cdef bint _started
    cdef bint _role_pending # message_start came, its role chunk is not out yet
    cdef bint _finished
    cdef dict _tools        # Anthropic block index -> _Tool
    cdef int _calls
    cdef _Usage _usage
    cdef readonly object error
    cdef readonly object invalid
    cdef readonly bint done

    def __init__(self, long long created, str model, bint include_usage):
        self._decoder = SSEDecoder()
        self._created = created
        self._model = model
        self._include_usage = include_usage
        self._id = None
        self._head = None
        self._started = False
        self._role_pending = False
        self._finished = False
        self._tools = {}
        self._calls = 0
        self._usage = _Usage()
        self.error = None
        self.invalid = None
        self.done = False

    @property
    def id(self):
        """The chunks' id (``chatcmpl-`` + the message id), once message_start came."""
        return self._id

    @property
    def usage(self):
        """OpenAI usage so far, or None before message_start."""
        return self._usage.openai()

    cpdef bytes feed(self, bytes chunk):
        cdef list out = []
        cdef list events
        cdef Event event
        cdef object obj, kind
        try:
            events = self._decoder.feed(chunk)
        except SSEError as exc:
            self.invalid = str(exc)
            return b""
        for event in events:
            if event.event == "ping":
                continue
            try:
                obj = _loads(event.data)
            except _JSONDecodeError:
                self.invalid = "an event is not valid JSON"
                break
            if not isinstance(obj, dict):
                self.invalid = "an event is not a JSON object"
                break
            kind = obj.get("type")
            if kind is None:
                kind = event.event
            if kind == "content_block_delta":
                if not self._started:
                    self.invalid = "content before message_start"
                    break
                self._delta(obj, out)
            elif kind == "content_block_start":
                if not self._started:
                    self.invalid = "content before message_start"
                    break
                self._block_start(obj, out)
            elif kind == "content_block_stop":
                self._block_stop(obj.get("index"), out)
            elif kind == "message_start":
                self._message_start(obj, out)
            elif kind == "message_delta":
                if not self._started:
                    self.invalid = "message_delta before message_start"
                    break
                self._message_delta(obj, out)
            elif kind == "message_stop":
                if not self._finished:
                    self.invalid = "message_stop without a stop_reason"
                    break
                if self._include_usage:
                    out.append(usage_event(self._id, self._created, self._model, self._usage.openai()))
                out.append(DONE_EVENT)
                self.done = True
                break
            elif kind == "error":
                self.error = obj.get("error") if obj.get("error") is not None else obj
                break
            # ping and event types newer than this code: nothing to send
        if not out:
            return b""
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    cdef inline bytes _chunk(self, bytes delta):
        return self._head + delta + _TAIL_OPEN

    cdef inline bytes _content_chunk(self, str text):
        # one allocation for the event, not one per concatenation
        return b"".join((self._head, _CONTENT_OPEN, _dumps(text), b"}", _TAIL_OPEN))

    cdef bytes _arguments_chunk(self, int index, bytes fragment):
        return b"".join((self._head, _ARGS_OPEN, str(index).encode(), _ARGS_MID, fragment, _ARGS_CLOSE, _TAIL_OPEN))

    cdef int _message_start(self, dict obj, list out) except -1:
        cdef object message = obj.get("message")
        if self._started:
            return 0
        if not isinstance(message, dict):
            message = {}
        self._started = True
        self._id = chat_id(message.get("id"))
        self._head = (_CHUNK_OPEN + _dumps(self._id) + _CHUNK_MID + str(self._created).encode()
                      + _CHUNK_MODEL + _dumps(self._model) + _CHUNK_DELTA)
        self._usage.read(message.get("usage"))
        # The role chunk waits for the first block: an `error` event right
        # after message_start (Anthropic's usual overload) then finds nothing
        # sent yet, and gw may still retry another target.
        self._role_pending = True
        return 0

    cdef inline void _role(self, list out):
        if self._role_pending:
            self._role_pending = False
            out.append(self._chunk(_ROLE_DELTA))

    cdef int _block_start(self, dict obj, list out) except -1:
        cdef object block = obj.get("content_block")
        cdef object kind, text, call_id, name, value
        cdef _Tool tool
        self._role(out)
        if not isinstance(block, dict):
            return 0
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if isinstance(text, str) and text:
                out.append(self._content_chunk(text))
        elif kind == "tool_use":
            tool = _Tool()
            tool.index = self._calls
            self._calls += 1
            self._tools[obj.get("index")] = tool
            call_id = block.get("id")
            name = block.get("name")
            out.append(self._chunk(_dumps({"tool_calls": [{
                "index": tool.index,
                "id": call_id if isinstance(call_id, str) else "",
                "type": "function",
                "function": {"name": name if isinstance(name, str) else "", "arguments": ""},
            }]})))
            # Anthropic starts with "input": {} and streams the input; a
            # block that brings its input whole (some compatible servers) sends it now.
            value = block.get("input")
            if isinstance(value, dict) and value:
                tool.has_arguments = True
                out.append(self._arguments_chunk(tool.index, _dumps(_dumps(value).decode())))
        # thinking, redacted_thinking, server tool blocks: dropped
        return 0

    cdef int _delta(self, dict obj, list out) except -1:
        cdef object delta = obj.get("delta")
        cdef object kind, text
        cdef _Tool tool
        self._role(out)
        if not isinstance(delta, dict):
            return 0
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            if isinstance(text, str) and text:
                out.append(self._content_chunk(text))
        elif kind == "input_json_delta":
            tool = self._tools.get(obj.get("index"))
            text = delta.get("partial_json")
            if tool is not None and isinstance(text, str) and text:
                tool.has_arguments = True
                out.append(self._arguments_chunk(tool.index, _dumps(text)))
        # thinking_delta, signature_delta, citations_delta: dropped
        return 0

    cdef int _block_stop(self, object index, list out) except -1:
        cdef _Tool tool = self._tools.get(index)
        if tool is not None and not tool.has_arguments:
            # A tool without arguments: clients json.loads them, "" would fail.
            tool.has_arguments = True
            out.append(self._arguments_chunk(tool.index, _EMPTY_ARGS))
        return 0

    cdef int _message_delta(self, dict obj, list out) except -1:
        cdef object delta = obj.get("delta")
        cdef object reason, index
        cdef str finish
        self._usage.read(obj.get("usage"))
        reason = delta.get("stop_reason") if isinstance(delta, dict) else None
        if reason is None or self._finished:
            return 0
        self._role(out)
        for index in list(self._tools):
            self._block_stop(index, out)
        finish = _FINISH.get(reason, "stop")
        if self._calls and finish == "stop":
            finish = "tool_calls"
        self._finished = True
        out.append(self._head + _FINISH_TAILS[finish])
        return 0

    cpdef bytes close(self):
        """At EOF: notes a stream cut inside an event. Nothing more to send:
        a stream that ends without ``message_stop`` is not done."""
        try:
            self._decoder.close()
        except SSEError as exc:
            if self.invalid is None:
                self.invalid = str(exc)
        return b""


cdef class MessagesWatch:
    """Watches an Anthropic Messages stream forwarded as it is (``/v1/messages``).

    Each event goes out as the upstream's own bytes. Only ``message_start`` and
    ``message_delta`` (usage) and ``error`` are parsed; the others are checked
    to be shaped like a JSON object. An ``error`` event is kept back (gw sends
    its own), ``message_stop`` ends the stream. ``message_start`` and pings
    wait for the first block, so an error right after them is still retryable.
    """

    cdef SSEDecoder _decoder
    cdef _Usage _usage
    cdef list _held         # message_start and pings, until the first block
    cdef readonly object error
    cdef readonly object invalid
    cdef readonly bint done

    def __init__(self):
        self._decoder = SSEDecoder()
        self._usage = _Usage()
        self._held = []
        self.error = None
        self.invalid = None
        self.done = False

    @property
    def usage(self):
        """OpenAI usage so far (``make_usage``), or None before message_start."""
        return self._usage.openai()

    cpdef bytes feed(self, bytes chunk):
        cdef list out = []
        cdef list events
        cdef Event event
        cdef object name, obj, message
        try:
            events = self._decoder.feed(chunk)
        except SSEError as exc:
            self.invalid = str(exc)
            return b""
        for event in events:
            name = event.event
            if not _looks_like_object(event.data):
                self.invalid = "an event is not a JSON object"
                break
            obj = None
            if name is None or name == "message_start" or name == "message_delta" or name == "error":
                try:
                    obj = _loads(event.data)
                except _JSONDecodeError:
                    self.invalid = "an event is not valid JSON"
                    break
                if name is None:
                    name = obj.get("type")
            if name == "message_start":
                message = obj.get("message")
                if isinstance(message, dict):
                    self._usage.read(message.get("usage"))
            elif name == "message_delta":
                self._usage.read(obj.get("usage"))
            elif name == "error":
                self.error = obj.get("error") if obj.get("error") is not None else obj
                break
            if self._held is not None:
                # Nothing goes out before the first block: an `error` event
                # right after message_start then leaves gw free to retry.
                if name == "message_start" or name == "ping":
                    self._held.append(event.raw)
                    continue
                out.extend(self._held)
                self._held = None
            out.append(event.raw)
            if name == "message_stop":
                self.done = True
                # A CR that ended the read ended the event; its LF, if any, is
                # still upstream, and nothing is read after message_stop.
                if event.raw.endswith(b"\r"):
                    out.append(b"\n")
                break
        if not out:
            return b""
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    cpdef bytes close(self):
        """At EOF: notes a stream cut inside an event."""
        try:
            self._decoder.close()
        except SSEError as exc:
            if self.invalid is None:
                self.invalid = str(exc)
        return b""
