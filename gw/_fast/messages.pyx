# cython: language_level=3
"""The Anthropic Messages API on top of OpenAI Chat Completions backends.

``to_openai`` converts a Messages request into a Chat Completions request,
``chat_to_message`` a ``chat.completion`` into a Messages ``message``, and
``MessageStream`` a stream of ``chat.completion.chunk`` events into the exact
Anthropic event sequence (``message_start`` ... ``message_stop``).
"""

import os

import orjson

from .convert import InvalidInput
from .sse cimport Event, SSEDecoder
from .sse import SSEError

_dumps = orjson.dumps
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_urandom = os.urandom


class InvalidAnswer(ValueError):
    """A backend's chat.completion that cannot be read as an answer (gw: 502, retryable)."""


# Request fields that ask for what only Anthropic's own servers run.
_REFUSED = {
    "mcp_servers": "MCP servers run on Anthropic's servers only: use an Anthropic backend",
    "container": "containers run on Anthropic's servers only: use an Anthropic backend",
}

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

_EMPTY_SCHEMA = {"type": "object", "properties": {}}
_STREAM_OPTIONS = {"include_usage": True}

# Stream event heads: every event is `event: <type>\ndata: {json}\n\n`, as Anthropic sends.
_MESSAGE_START = b"event: message_start\ndata: "
_BLOCK_START = b"event: content_block_start\ndata: "
_BLOCK_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'
_TEXT_DELTA = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":')
_TEXT_DELTA_MID = b',"delta":{"type":"text_delta","text":'
_JSON_DELTA_MID = b',"delta":{"type":"input_json_delta","partial_json":'
_DELTA_END = b"}}\n\n"
_MESSAGE_DELTA = b"event: message_delta\ndata: "
_MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
_ERROR = b"event: error\ndata: "
_END = b"\n\n"

# Block indexes as bytes, made once: a stream rarely has more than a few blocks.
cdef tuple _INDEX = tuple(str(i).encode() for i in range(64))


cdef inline bytes _index_bytes(Py_ssize_t i):
    if i < 64:
        return <bytes>_INDEX[i]
    return str(i).encode()


cpdef str message_id():
    """A new Messages id: ``msg_`` and 24 hex digits."""
    return "msg_" + _urandom(12).hex()


cpdef bytes error_event(bytes body):
    """``event: error`` with ``body`` (``{"type":"error","error":{...}}``) as its data."""
    return _ERROR + body + _END


# ---------------------------------------------------------------- request


cdef str _string(object value, str param):
    if not isinstance(value, str):
        raise InvalidInput(f"'{param}' must be a string", param)
    return <str>value


cdef dict _block(object block, str param):
    if not isinstance(block, dict):
        raise InvalidInput(f"'{param}' must be an object", param)
    return <dict>block


cdef str _system_text(object system, str param):
    """Text blocks are joined into one string: the one system form every backend reads."""
    cdef list texts
    cdef dict block
    cdef Py_ssize_t j
    if isinstance(system, str):
        return <str>system
    if not isinstance(system, list):
        raise InvalidInput(f"'{param}' must be a string or an array of text blocks", param)
    texts = []
    for j in range(len(<list>system)):
        block = _block((<list>system)[j], f"{param}[{j}]")
        if block.get("type") != "text":
            raise InvalidInput(f"'{param}[{j}]' must be a text block", f"{param}[{j}]")
        texts.append(_string(block.get("text"), f"{param}[{j}].text"))
    return "\n\n".join(texts)


cdef dict _image_part(dict block, str param):
    cdef object source = block.get("source")
    cdef object kind
    if not isinstance(source, dict):
        raise InvalidInput(f"'{param}.source' must be an object", f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        url = "data:" + _string(source.get("media_type"), f"{param}.source.media_type") + ";base64," + \
            _string(source.get("data"), f"{param}.source.data")
    elif kind == "url":
        url = _string(source.get("url"), f"{param}.source.url")
    else:
        raise InvalidInput(
            f"'{param}.source.type' {kind!r} cannot be sent to this model's backend: use 'base64' or 'url'",
            f"{param}.source.type",
        )
    return {"type": "image_url", "image_url": {"url": url}}


cdef str _document_text(dict block, str param):
    """A plain-text document's text; other documents (PDF, files) cannot be converted."""
    cdef object source = block.get("source")
    cdef object kind
    cdef list texts
    cdef object content
    if not isinstance(source, dict):
        raise InvalidInput(f"'{param}.source' must be an object", f"{param}.source")
    kind = source.get("type")
    if kind == "text":
        return _string(source.get("data"), f"{param}.source.data")
    if kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            return <str>content
        if isinstance(content, list):
            texts = []
            for j, part in enumerate(<list>content):
                part = _block(part, f"{param}.source.content[{j}]")
                if part.get("type") != "text":
                    raise InvalidInput(
                        f"'{param}.source.content[{j}]' must be a text block for this model's backend",
                        f"{param}.source.content[{j}]",
                    )
                texts.append(_string(part.get("text"), f"{param}.source.content[{j}].text"))
            return "\n".join(texts)
    raise InvalidInput(
        f"'{param}': only plain-text documents can be sent to this model's backend (source type {kind!r})",
        f"{param}.source.type",
    )


cdef dict _tool_message(dict block, str param, list images):
    """A tool_result block as an OpenAI ``tool`` message; its images go to ``images``
    (a tool message holds text only)."""
    cdef object content = block.get("content")
    cdef list texts
    cdef dict part
    cdef object kind
    cdef str text
    tool_call_id = _string(block.get("tool_use_id"), f"{param}.tool_use_id")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = <str>content
    elif isinstance(content, list):
        texts = []
        for j in range(len(<list>content)):
            part = _block((<list>content)[j], f"{param}.content[{j}]")
            kind = part.get("type")
            if kind == "text":
                texts.append(_string(part.get("text"), f"{param}.content[{j}].text"))
            elif kind == "image":
                images.append(_image_part(part, f"{param}.content[{j}]"))
            elif kind == "document":
                texts.append(_document_text(part, f"{param}.content[{j}]"))
            else:
                raise InvalidInput(
                    f"'{param}.content[{j}]': block type {kind!r} cannot be sent to this model's backend",
                    f"{param}.content[{j}].type",
                )
        text = "\n".join(texts)
    else:
        raise InvalidInput(f"'{param}.content' must be a string or an array of blocks", f"{param}.content")
    return {"role": "tool", "tool_call_id": tool_call_id, "content": text}


cdef object _content_of(list parts):
    """One text part becomes a plain string (what every backend reads)."""
    cdef dict first
    if len(parts) == 1:
        first = parts[0]
        if first["type"] == "text":
            return first["text"]
    return parts


cdef int _user(object content, str param, list out) except -1:
    cdef list parts, tools, images
    cdef dict block
    cdef object kind
    cdef Py_ssize_t j
    if isinstance(content, str):
        out.append({"role": "user", "content": content})
        return 0
    if not isinstance(content, list):
        raise InvalidInput(f"'{param}.content' must be a string or an array of blocks", f"{param}.content")
    if not content:
        raise InvalidInput(f"'{param}.content' must not be empty", f"{param}.content")
    parts = []
    tools = []
    images = []
    for j in range(len(<list>content)):
        block = _block((<list>content)[j], f"{param}.content[{j}]")
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": _string(block.get("text"), f"{param}.content[{j}].text")})
        elif kind == "tool_result":
            tools.append(_tool_message(block, f"{param}.content[{j}]", images))
        elif kind == "image":
            parts.append(_image_part(block, f"{param}.content[{j}]"))
        elif kind == "document":
            parts.append({"type": "text", "text": _document_text(block, f"{param}.content[{j}]")})
        elif kind == "thinking" or kind == "redacted_thinking":
            continue
        else:
            raise InvalidInput(
                f"'{param}.content[{j}]': block type {kind!r} cannot be sent to this model's backend",
                f"{param}.content[{j}].type",
            )
    # Tool results answer the previous assistant turn: OpenAI wants them right after it.
    out.extend(tools)
    if images:
        parts[0:0] = images
    if parts:
        out.append({"role": "user", "content": _content_of(parts)})
    return 0


cdef int _assistant(object content, str param, list out) except -1:
    cdef list texts, calls
    cdef dict block, message
    cdef object kind, arguments
    cdef Py_ssize_t j
    if isinstance(content, str):
        out.append({"role": "assistant", "content": content})
        return 0
    if not isinstance(content, list):
        raise InvalidInput(f"'{param}.content' must be a string or an array of blocks", f"{param}.content")
    texts = []
    calls = []
    for j in range(len(<list>content)):
        block = _block((<list>content)[j], f"{param}.content[{j}]")
        kind = block.get("type")
        if kind == "text":
            texts.append({"type": "text", "text": _string(block.get("text"), f"{param}.content[{j}].text")})
        elif kind == "tool_use":
            arguments = block.get("input")
            if arguments is None:
                arguments = {}
            elif not isinstance(arguments, dict):
                raise InvalidInput(f"'{param}.content[{j}].input' must be an object", f"{param}.content[{j}].input")
            calls.append({
                "id": _string(block.get("id"), f"{param}.content[{j}].id"),
                "type": "function",
                "function": {
                    "name": _string(block.get("name"), f"{param}.content[{j}].name"),
                    "arguments": _dumps(arguments).decode() if arguments else "{}",
                },
            })
        elif kind == "thinking" or kind == "redacted_thinking":
            continue  # signed by Anthropic, meaningless to another model
        else:
            raise InvalidInput(
                f"'{param}.content[{j}]': block type {kind!r} cannot be sent to this model's backend",
                f"{param}.content[{j}].type",
            )
    if not texts and not calls:
        return 0  # only thinking: nothing left to say
    message = {"role": "assistant", "content": _content_of(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    out.append(message)
    return 0


cdef list _tools(object tools):
    cdef list out = []
    cdef dict tool, function
    cdef object kind, schema, description
    cdef Py_ssize_t k
    if not isinstance(tools, list):
        raise InvalidInput("'tools' must be an array", "tools")
    for k in range(len(<list>tools)):
        tool = _block((<list>tools)[k], f"tools[{k}]")
        kind = tool.get("type")
        if kind is not None and kind != "custom":
            # Server tools run at Anthropic; its client tools (bash, text editor,
            # computer, memory) have schemas only Anthropic's models know.
            raise InvalidInput(
                f"'tools[{k}]': the Anthropic-defined tool {kind!r} needs an Anthropic backend",
                f"tools[{k}].type",
            )
        function = {"name": _string(tool.get("name"), f"tools[{k}].name")}
        description = tool.get("description")
        if description is not None:
            function["description"] = _string(description, f"tools[{k}].description")
        schema = tool.get("input_schema")
        if schema is None:
            schema = _EMPTY_SCHEMA
        elif not isinstance(schema, dict):
            raise InvalidInput(f"'tools[{k}].input_schema' must be an object", f"tools[{k}].input_schema")
        function["parameters"] = schema
        if tool.get("strict") is True:
            function["strict"] = True
        out.append({"type": "function", "function": function})
    return out


cdef object _tool_choice(object choice):
    cdef object kind
    if not isinstance(choice, dict):
        raise InvalidInput("'tool_choice' must be an object", "tool_choice")
    kind = (<dict>choice).get("type")
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool":
        return {"type": "function", "function": {"name": _string((<dict>choice).get("name"), "tool_choice.name")}}
    raise InvalidInput(f"'tool_choice.type' must be auto, any, tool or none, got {kind!r}", "tool_choice.type")


cdef object _response_format(dict body):
    """``output_config.format`` (or the beta ``output_format``) as a json_schema response_format."""
    cdef object config = body.get("output_config")
    cdef object fmt = None
    cdef str param = "output_config.format"
    if config is not None:
        if not isinstance(config, dict):
            raise InvalidInput("'output_config' must be an object", "output_config")
        fmt = (<dict>config).get("format")
    if fmt is None:
        fmt = body.get("output_format")
        param = "output_format"
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or (<dict>fmt).get("type") != "json_schema" or not isinstance((<dict>fmt).get("schema"), dict):
        raise InvalidInput(f"'{param}' must be {{\"type\": \"json_schema\", \"schema\": {{...}}}}", param)
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": (<dict>fmt)["schema"]}}


cpdef dict to_openai(dict body):
    """An Anthropic Messages request as an OpenAI Chat Completions request."""
    cdef list messages = []
    cdef object raw, message, value, tools, stops
    cdef str text, param
    cdef Py_ssize_t i
    cdef dict out
    for name, why in _REFUSED.items():
        if body.get(name):
            raise InvalidInput(f"'{name}': {why}", name)
    value = body.get("system")
    if value is not None:
        text = _system_text(value, "system")
        if text:
            messages.append({"role": "system", "content": text})
    raw = body.get("messages")
    if not isinstance(raw, list):
        raise InvalidInput("'messages' must be an array", "messages")
    for i in range(len(<list>raw)):
        param = f"messages[{i}]"
        message = _block((<list>raw)[i], param)
        role = (<dict>message).get("role")
        if role == "user":
            _user((<dict>message).get("content"), param, messages)
        elif role == "assistant":
            _assistant((<dict>message).get("content"), param, messages)
        elif role == "system":
            text = _system_text((<dict>message).get("content"), f"{param}.content")
            if text:
                messages.append({"role": "system", "content": text})
        else:
            raise InvalidInput(f"'{param}.role' must be 'user', 'assistant' or 'system'", f"{param}.role")
    out = {"model": body.get("model"), "messages": messages}
    for name in ("max_tokens", "temperature", "top_p", "top_k"):
        value = body.get(name)
        if value is not None:
            out[name] = value
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list):
            raise InvalidInput("'stop_sequences' must be an array of strings", "stop_sequences")
        for value in <list>stops:
            if not isinstance(value, str):
                raise InvalidInput("'stop_sequences' must be an array of strings", "stop_sequences")
        if stops:
            out["stop"] = stops
    value = body.get("metadata")
    if isinstance(value, dict) and isinstance((<dict>value).get("user_id"), str):
        out["user"] = (<dict>value)["user_id"]
    tools = body.get("tools")
    if tools is not None:
        tools = _tools(tools)
        if tools:
            out["tools"] = tools
            value = body.get("tool_choice")
            if value is not None:
                out["tool_choice"] = _tool_choice(value)
                if (<dict>value).get("disable_parallel_tool_use") is True:
                    out["parallel_tool_calls"] = False
    value = _response_format(body)
    if value is not None:
        out["response_format"] = value
    if body.get("stream") is True:
        out["stream"] = True
        # Usage arrives in the last chunk; message_delta needs it.
        out["stream_options"] = dict(_STREAM_OPTIONS)
    return out


# ---------------------------------------------------------------- answer


cdef dict _usage(object usage):
    """Anthropic usage from OpenAI usage: input_tokens excludes the cache reads."""
    cdef object prompt, completion, details, cached
    if not isinstance(usage, dict):
        return {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0}
    prompt = (<dict>usage).get("prompt_tokens")
    completion = (<dict>usage).get("completion_tokens")
    details = (<dict>usage).get("prompt_tokens_details")
    cached = (<dict>details).get("cached_tokens") if isinstance(details, dict) else None
    if not isinstance(prompt, int):
        prompt = 0
    if not isinstance(completion, int):
        completion = 0
    if not isinstance(cached, int):
        cached = 0
    return {
        "input_tokens": max(prompt - cached, 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": completion,
    }


cdef tuple _stop_reason(object finish, bint tool_use, object matched, object stops):
    """(stop_reason, stop_sequence) for an OpenAI finish_reason.

    ``matched`` is vLLM's ``stop_reason``: the stop string that ended the
    answer, the only way to tell a stop sequence from a natural end.
    """
    cdef object reason = _STOP_REASONS.get(finish, "end_turn")
    if tool_use and reason == "end_turn":
        reason = "tool_use"  # some servers finish tool calls with "stop"
    if reason == "end_turn" and isinstance(matched, str) and stops is not None and matched in stops:
        return "stop_sequence", matched
    return reason, None


cdef dict _tool_use(object call, Py_ssize_t n):
    cdef object function, arguments, parsed, call_id
    if not isinstance(call, dict):
        raise InvalidAnswer(f"tool_calls[{n}] is not an object")
    function = (<dict>call).get("function")
    if not isinstance(function, dict) or not isinstance((<dict>function).get("name"), str):
        raise InvalidAnswer(f"tool_calls[{n}] has no function name")
    arguments = (<dict>function).get("arguments")
    if arguments is None or isinstance(arguments, str) and not (<str>arguments).strip():
        parsed = {}
    elif isinstance(arguments, dict):
        parsed = arguments
    else:
        try:
            parsed = _loads(arguments)
        except (_JSONDecodeError, TypeError):
            raise InvalidAnswer(f"tool_calls[{n}].function.arguments is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise InvalidAnswer(f"tool_calls[{n}].function.arguments is not a JSON object")
    call_id = (<dict>call).get("id")
    if not isinstance(call_id, str) or not call_id:
        call_id = f"toolu_{_urandom(12).hex()}"
    return {"type": "tool_use", "id": call_id, "name": (<dict>function)["name"], "input": parsed}


cdef str _answer_text(object content):
    cdef list texts
    if isinstance(content, str):
        return <str>content
    if isinstance(content, list):  # content parts, from some servers
        texts = []
        for part in <list>content:
            if isinstance(part, dict) and isinstance((<dict>part).get("text"), str):
                texts.append((<dict>part)["text"])
        return "".join(texts)
    return ""


cpdef bytes chat_to_message(dict answer, str id, str model, object stop_sequences=None):
    """An OpenAI ``chat.completion`` as the bytes of an Anthropic ``message``.

    Raises ``InvalidAnswer`` when the answer has no readable first choice or a
    tool call whose arguments are not a JSON object.
    """
    cdef object choices, choice, message, calls, refusal
    cdef list content = []
    cdef str text
    cdef Py_ssize_t n
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance((<list>choices)[0], dict):
        raise InvalidAnswer("no choices")
    choice = (<list>choices)[0]
    message = (<dict>choice).get("message")
    if not isinstance(message, dict):
        raise InvalidAnswer("the choice has no message")
    text = _answer_text((<dict>message).get("content"))
    if not text:
        refusal = (<dict>message).get("refusal")
        if isinstance(refusal, str):
            text = <str>refusal
    if text:
        content.append({"type": "text", "text": text})
    calls = (<dict>message).get("tool_calls")
    if isinstance(calls, list):
        for n in range(len(<list>calls)):
            content.append(_tool_use((<list>calls)[n], n))
    reason, sequence = _stop_reason(
        (<dict>choice).get("finish_reason"), bool(calls), (<dict>choice).get("stop_reason"), stop_sequences
    )
    return _dumps({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": _usage(answer.get("usage")),
    })


# ---------------------------------------------------------------- stream


cdef enum:
    _NONE = 0
    _TEXT = 1
    _TOOL = 2


cdef class _Tool:
    cdef Py_ssize_t index       # its content block
    cdef list arguments         # the argument fragments, checked at the end


cdef class MessageStream:
    """OpenAI ``chat.completion.chunk`` SSE bytes in, Anthropic Messages events out.

    Fed the bytes an adapter's ``chat_stream`` yields. ``message_start`` comes
    with the first chunk; each text run and each tool call is a content block;
    ``message_delta`` (stop reason, usage) and ``message_stop`` come at
    ``[DONE]``, once the usage chunk that follows the finish has been seen.
    """

    cdef SSEDecoder _decoder
    cdef str _id
    cdef str _model
    cdef object _stops
    cdef bint _started
    cdef bint _finished
    cdef int _open                  # _NONE, _TEXT or _TOOL: the block being written
    cdef Py_ssize_t _index          # the open block's index
    cdef Py_ssize_t _next           # the next block's index
    cdef dict _tools                # OpenAI tool call index (or id) -> _Tool
    cdef object _last_tool          # key of the last tool call, for servers that omit `index`
    cdef object _finish             # the OpenAI finish_reason
    cdef object _matched            # vLLM's stop_reason
    cdef readonly object usage      # the OpenAI usage, once seen
    cdef readonly object error      # an error object the stream carried
    cdef readonly object invalid    # why the stream cannot be converted, or None
    cdef readonly bint done         # message_stop was produced

    def __init__(self, str id, str model, object stop_sequences=None):
        self._decoder = SSEDecoder()
        self._id = id
        self._model = model
        self._stops = stop_sequences
        self._started = False
        self._finished = False
        self._open = _NONE
        self._index = -1
        self._next = 0
        self._tools = {}
        self._last_tool = None
        self._finish = None
        self._matched = None
        self.usage = None
        self.error = None
        self.invalid = None
        self.done = False

    cpdef bytes feed(self, bytes chunk):
        cdef list out = []
        cdef list events
        cdef Event event
        cdef bytes data
        cdef object obj, usage, choices, choice
        if self.done or self.error is not None or self.invalid is not None:
            return b""
        try:
            events = self._decoder.feed(chunk)
        except SSEError as exc:
            self.invalid = str(exc)
            return b""
        for event in events:
            data = event.data
            # Chunks start with `{`; only anything else can be [DONE].
            if not data.startswith(b"{") and data.strip() == b"[DONE]":
                self._end(out)
                break
            try:
                obj = _loads(data)
            except _JSONDecodeError:
                self.invalid = "an event is not valid JSON"
                break
            if not isinstance(obj, dict):
                self.invalid = "an event is not a JSON object"
                break
            if (<dict>obj).get("error") is not None:
                self.error = (<dict>obj)["error"]
                break
            usage = (<dict>obj).get("usage")
            if isinstance(usage, dict):
                self.usage = usage
            if not self._started:
                self._started = True
                out.append(self._message_start())
            choices = (<dict>obj).get("choices")
            if isinstance(choices, list):
                for choice in <list>choices:
                    if isinstance(choice, dict) and (<dict>choice).get("index", 0) == 0:
                        self._choice(<dict>choice, out)
                        if self.invalid is not None:
                            break
            if self.invalid is not None:
                break
        if not out:
            return b""
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    cpdef bytes close(self):
        """At the end of the adapter's stream: finish a stream that lacked ``[DONE]``."""
        cdef list out = []
        try:
            self._decoder.close()
        except SSEError as exc:
            if self.invalid is None:
                self.invalid = str(exc)
            return b""
        if self._finished and not self.done and self.error is None and self.invalid is None:
            self._end(out)
        return b"".join(out)

    cdef bytes _message_start(self):
        cdef dict usage = _usage(self.usage)
        return _MESSAGE_START + _dumps({
            "type": "message_start",
            "message": {
                "id": self._id,
                "type": "message",
                "role": "assistant",
                "model": self._model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 0},
            },
        }) + _END

    cdef int _choice(self, dict choice, list out) except -1:
        cdef object delta, text, calls, call, finish
        if self._finished:
            return 0
        delta = choice.get("delta")
        if isinstance(delta, dict):
            text = (<dict>delta).get("content")
            if not isinstance(text, str) or not text:
                text = (<dict>delta).get("refusal")
            if isinstance(text, str) and text:
                if self._open != _TEXT:
                    self._close_block(out)
                    self._start_block(out, {"type": "text", "text": ""}, _TEXT)
                out.append(_TEXT_DELTA + _index_bytes(self._index) + _TEXT_DELTA_MID + _dumps(text) + _DELTA_END)
            calls = (<dict>delta).get("tool_calls")
            if isinstance(calls, list):
                for call in <list>calls:
                    if isinstance(call, dict):
                        self._tool_delta(<dict>call, out)
                        if self.invalid is not None:
                            return 0
        finish = choice.get("finish_reason")
        if finish is not None:
            self._finished = True
            self._finish = finish
            self._matched = choice.get("stop_reason")
            self._close_block(out)
        return 0

    cdef int _tool_delta(self, dict call, list out) except -1:
        cdef object key = call.get("index")
        cdef object function = call.get("function")
        cdef object name, arguments, call_id
        cdef _Tool tool
        if not isinstance(function, dict):
            function = {}
        if not isinstance(key, int):
            # No index (some servers): a call with an id is a new one.
            call_id = call.get("id")
            key = call_id if isinstance(call_id, str) and call_id else self._last_tool
        tool = self._tools.get(key)
        if tool is None:
            name = (<dict>function).get("name")
            if not isinstance(name, str) or not name:
                self.invalid = "a tool call started without a function name"
                return 0
            call_id = call.get("id")
            if not isinstance(call_id, str) or not call_id:
                call_id = f"toolu_{_urandom(12).hex()}"
            self._close_block(out)
            self._start_block(out, {"type": "tool_use", "id": call_id, "name": name, "input": {}}, _TOOL)
            tool = _Tool()
            tool.index = self._index
            tool.arguments = []
            self._tools[key] = tool
            self._last_tool = key
        arguments = (<dict>function).get("arguments")
        if isinstance(arguments, str) and arguments:
            tool.arguments.append(arguments)
            # A fragment of a call whose block was closed keeps that block's index.
            out.append(_TEXT_DELTA + _index_bytes(tool.index) + _JSON_DELTA_MID + _dumps(arguments) + _DELTA_END)
        return 0

    cdef int _start_block(self, list out, dict block, int kind) except -1:
        self._index = self._next
        self._next += 1
        self._open = kind
        out.append(_BLOCK_START + _dumps({"type": "content_block_start", "index": self._index, "content_block": block}) + _END)
        return 0

    cdef int _close_block(self, list out) except -1:
        if self._open != _NONE:
            out.append(_BLOCK_STOP + _index_bytes(self._index) + b"}\n\n")
            self._open = _NONE
        return 0

    cdef int _end(self, list out) except -1:
        """[DONE]: the message_delta and message_stop, if the stream is whole."""
        cdef _Tool tool
        cdef str joined
        cdef dict usage
        cdef object reason, sequence
        if not self._finished:
            self.invalid = "the stream ended without a finish_reason"
            return 0
        for tool in self._tools.values():
            joined = "".join(tool.arguments)
            if joined.strip():
                try:
                    if not isinstance(_loads(joined), dict):
                        raise ValueError
                except ValueError:
                    self.invalid = "tool call arguments are not a JSON object"
                    return 0
        reason, sequence = _stop_reason(self._finish, bool(self._tools), self._matched, self._stops)
        if self.usage is None:
            usage = {"output_tokens": 0}
        else:
            usage = _usage(self.usage)
        out.append(_MESSAGE_DELTA + _dumps({
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": usage,
        }) + _END)
        out.append(_MESSAGE_STOP)
        self.done = True
        return 0
