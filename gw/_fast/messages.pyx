# cython: language_level=3
"""The Anthropic Messages API as a client protocol, on any backend.

``to_openai`` converts a Messages request into a Chat Completions request (the
form every non-Anthropic adapter takes). The encoders write gw's events
(events.pxd) as Anthropic's answers: ``MessagesEvents`` the exact SSE event
sequence (``message_start`` ... ``message_stop``), ``MessageAnswer`` a whole
``message``; any backend decoder drives them, e.g. ``openai.ChatDecoder``
for adapters that answer in Chat Completions.
"""

import orjson

from .rules import InvalidInput
from .events cimport Encoder
from .openai import InvalidAnswer
from .rules cimport max_tokens, new_id, stop_list, stream_with_usage, tool_arguments

_dumps = orjson.dumps
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


# Request fields that ask for what only Anthropic's own servers run.
_REFUSED = {
    "mcp_servers": "MCP servers run on Anthropic's servers only: use an Anthropic backend",
    "container": "containers run on Anthropic's servers only: use an Anthropic backend",
}

# gw's finish reasons (rules.finish_reason) -> Anthropic's stop_reason.
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}

_EMPTY_SCHEMA = {"type": "object", "properties": {}}

# Stream event heads: every event is `event: <type>\ndata: {json}\n\n`, as Anthropic sends.
_MESSAGE_START = b'event: message_start\ndata: {"type":"message_start","message":{"id":'
_MESSAGE_START_MODEL = b',"type":"message","role":"assistant","model":'
_MESSAGE_START_USAGE = b',"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":'
_MESSAGE_START_END = b',"output_tokens":0}}}\n\n'
_BLOCK_START = b'event: content_block_start\ndata: {"type":"content_block_start","index":'
_BLOCK_START_MID = b',"content_block":'
_TEXT_BLOCK = b'{"type":"text","text":""}'
_THINKING_BLOCK = b'{"type":"thinking","thinking":"","signature":""}'
_TOOL_BLOCK = b'{"type":"tool_use","id":'
_TOOL_BLOCK_NAME = b',"name":'
_TOOL_BLOCK_END = b',"input":{}}'
_BLOCK_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'
_BLOCK_STOP_END = b"}\n\n"
_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_TEXT_DELTA_MID = b',"delta":{"type":"text_delta","text":'
_THINKING_DELTA_MID = b',"delta":{"type":"thinking_delta","thinking":'
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
    return new_id("msg_")


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
                raise _unsupported(kind, f"{param}.content[{j}]")
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


cdef list _content_blocks(object content, str param):
    """A message's content blocks as (block, type, its param), a text block as
    its OpenAI text part; thinking blocks are left out (signed by Anthropic,
    meaningless to another model)."""
    cdef list out = []
    cdef dict block
    cdef object kind
    cdef str at
    cdef Py_ssize_t j
    if not isinstance(content, list):
        raise InvalidInput(f"'{param}.content' must be a string or an array of blocks", f"{param}.content")
    for j in range(len(<list>content)):
        at = f"{param}.content[{j}]"
        block = _block((<list>content)[j], at)
        kind = block.get("type")
        if kind == "text":
            out.append((_text_part(_string(block.get("text"), at + ".text")), kind, at))
        elif kind != "thinking" and kind != "redacted_thinking":
            out.append((block, kind, at))
    return out


cdef object _unsupported(object kind, str at):
    return InvalidInput(f"'{at}': block type {kind!r} cannot be sent to this model's backend", f"{at}.type")


cdef dict _text_part(str text):
    return {"type": "text", "text": text}


cdef int _user(object content, str param, list out) except -1:
    cdef list parts = [], tools = [], images = []
    cdef dict block
    cdef object kind
    cdef str at
    for block, kind, at in _content_blocks(content, param):
        if kind == "tool_result":
            tools.append(_tool_message(block, at, images))
        elif kind == "image":
            parts.append(_image_part(block, at))
        elif kind == "document":
            parts.append(_text_part(_document_text(block, at)))
        elif kind == "text":
            parts.append(block)
        else:
            raise _unsupported(kind, at)
    if not content:
        raise InvalidInput(f"'{param}.content' must not be empty", f"{param}.content")
    # Tool results answer the previous assistant turn: OpenAI wants them right after it.
    out.extend(tools)
    if images:
        parts[0:0] = images
    if parts:
        out.append({"role": "user", "content": _content_of(parts)})
    return 0


cdef int _assistant(object content, str param, list out) except -1:
    cdef list texts = [], calls = []
    cdef dict block, message
    cdef object kind, arguments
    cdef str at
    for block, kind, at in _content_blocks(content, param):
        if kind == "text":
            texts.append(block)
        elif kind == "tool_use":
            arguments = block.get("input")
            if not isinstance(arguments, dict):
                if arguments is not None and not isinstance(arguments, str):
                    raise InvalidInput(f"'{at}.input' must be an object", f"{at}.input")
                # Some clients send the input as JSON text: the tool-argument rule reads it.
                arguments = tool_arguments(arguments, f"{at}.input")
            calls.append({
                "id": _string(block.get("id"), f"{at}.id"),
                "type": "function",
                "function": {
                    "name": _string(block.get("name"), f"{at}.name"),
                    "arguments": _dumps(arguments).decode() if arguments else "{}",
                },
            })
        else:
            raise _unsupported(kind, at)
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


cdef object _effort(object thinking, object config):
    """Anthropic's ``thinking`` as OpenAI's ``reasoning_effort`` (each backend's control
    then follows it): disabled -> none; enabled by its budget_tokens; adaptive by
    ``output_config.effort`` (max -> high), else medium."""
    cdef object kind, budget, level
    if thinking is None:
        return None
    if not isinstance(thinking, dict):
        raise InvalidInput("'thinking' must be an object", "thinking")
    kind = (<dict>thinking).get("type")
    if kind == "disabled":
        return "none"
    if kind == "adaptive":
        level = (<dict>config).get("effort") if isinstance(config, dict) else None
        if level == "low" or level == "medium" or level == "high":
            return level
        return "high" if level == "max" else "medium"
    if kind != "enabled":
        raise InvalidInput("'thinking.type' must be 'enabled', 'disabled' or 'adaptive'", "thinking.type")
    budget = (<dict>thinking).get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 0:
        raise InvalidInput("'thinking.budget_tokens' must be a non-negative integer", "thinking.budget_tokens")
    if budget <= 2048:
        return "low"
    if budget <= 12288:
        return "medium"
    return "high"


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
        value = (<dict>message).get("content")
        if (role == "user" or role == "assistant") and isinstance(value, str):
            messages.append({"role": role, "content": value})
        elif role == "user":
            _user(value, param, messages)
        elif role == "assistant":
            _assistant(value, param, messages)
        elif role == "system":
            text = _system_text((<dict>message).get("content"), f"{param}.content")
            if text:
                messages.append({"role": "system", "content": text})
        else:
            raise InvalidInput(f"'{param}.role' must be 'user', 'assistant' or 'system'", f"{param}.role")
    out = {"model": body.get("model"), "messages": messages}
    value = max_tokens(body, None)
    if value is not None:
        out["max_tokens"] = value
    for name in ("temperature", "top_p", "top_k"):
        value = body.get(name)
        if value is not None:
            out[name] = value
    stops = stop_list(body.get("stop_sequences"), "stop_sequences")
    if stops is not None:
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
    value = _effort(body.get("thinking"), body.get("output_config"))
    if value is not None:
        out["reasoning_effort"] = value
    stream_with_usage(body, out)  # message_delta needs the usage of the last chunk
    return out


# ---------------------------------------------------------------- answer


cdef enum:
    _NONE = 0
    _TEXT = 1
    _THINKING = 2
    _TOOL = 3


cdef dict _usage(Encoder encoder):
    """Anthropic usage: ``input_tokens`` excludes the cache reads and writes."""
    return {
        "input_tokens": encoder.input_tokens,
        "cache_creation_input_tokens": encoder.cache_write_tokens,
        "cache_read_input_tokens": encoder.cache_read_tokens,
        "output_tokens": encoder.output_tokens,
    }


cdef class AnthropicEncoder(Encoder):
    """What both Messages encoders share: choice 0 only (the others are not
    Anthropic's), runs of text and reasoning as blocks, the finish and its
    stop reason."""

    def __init__(self, str id, str model, object stop_sequences=None):
        self._id = id
        self._model = model
        self._stops = stop_sequences
        self._tools = {}

    cpdef text(self, int choice, str text):
        if choice == 0:
            self._run(_TEXT, text)

    cpdef reasoning(self, int choice, str text):
        if choice == 0:
            self._run(_THINKING, text)

    cpdef tool_start(self, int choice, int index, str call_id, str name, object extra):
        if choice == 0:
            self._tool(index, call_id, name)

    cpdef tool_args(self, int choice, int index, str fragment):
        cdef object tool = self._tools.get(index) if choice == 0 else None
        if tool is not None:
            self._fragment(tool, fragment)

    cpdef finish(self, int choice, str reason, object matched):
        if choice != 0:
            return
        Encoder.finish(self, choice, reason, matched)
        self._reason = reason
        self._matched = matched
        self._finish()

    cdef int _run(self, int kind, str text) except -1:
        return 0

    cdef int _tool(self, int index, str call_id, str name) except -1:
        return 0

    cdef int _fragment(self, object tool, str fragment) except -1:
        return 0

    cdef int _finish(self) except -1:
        return 0

    cdef tuple _stop(self, bint tool_use):
        """(stop_reason, stop_sequence) for the finish.

        ``matched`` is the stop string that ended the answer when the backend
        says (vLLM's ``stop_reason``): the only way to tell a stop sequence
        from a natural end. It counts only when it is one of the request's
        ``stop_sequences``.
        """
        cdef object reason = _STOP_REASONS.get(self._reason, "end_turn")
        if tool_use and reason == "end_turn":
            reason = "tool_use"  # some servers finish tool calls with "stop"
        if (reason == "end_turn" and isinstance(self._matched, str) and self._stops is not None
                and self._matched in self._stops):
            return "stop_sequence", self._matched
        return reason, None


cdef class MessageAnswer(AnthropicEncoder):
    """Events in, an Anthropic ``message`` out (choice 0; the others are not Anthropic's).

        encoder = MessageAnswer("msg_1", "claude-x", None)
        read_answer(chat_completion, encoder)
        encoder.answer()   # {"id": "msg_1", "type": "message", "content": [...], ...}

    Each run of reasoning is a ``thinking`` block (no signature: no backend but
    Anthropic signs), each run of text a ``text`` block, each tool call a
    ``tool_use`` block, in the order they came.
    """

    def __cinit__(self, *args, **kwargs):
        self._blocks = []

    cdef int _run(self, int kind, str text) except -1:
        if self._open != kind:
            self._open = kind
            self._parts = [text]
            self._blocks.append([kind, self._parts])
        else:
            self._parts.append(text)
        return 0

    cdef int _tool(self, int index, str call_id, str name) except -1:
        cdef list fragments = []
        self._open = _TOOL
        self._parts = None
        self._blocks.append([_TOOL, call_id, name, fragments])
        self._tools[index] = fragments
        return 0

    cdef int _fragment(self, object tool, str fragment) except -1:
        (<list>tool).append(fragment)
        return 0

    cpdef dict answer(self):
        """The ``message``. Raises ``InvalidAnswer`` for a tool call whose
        arguments are not a JSON object (blank or ``null`` ones are ``{}``)."""
        cdef list content = []
        cdef list block
        cdef Py_ssize_t n = 0
        cdef object kind, value
        for block in self._blocks:
            kind = block[0]
            if kind == _TEXT:
                content.append({"type": "text", "text": "".join(block[1])})
            elif kind == _THINKING:
                content.append({"type": "thinking", "thinking": "".join(block[1]), "signature": ""})
            else:
                try:
                    value = tool_arguments("".join(block[3]), f"tool_calls[{n}].function.arguments")
                except InvalidInput as exc:
                    raise InvalidAnswer(exc.message) from None
                content.append({"type": "tool_use", "id": block[1], "name": block[2], "input": value})
                n += 1
        reason, sequence = self._stop(n > 0)
        return {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": content,
            "stop_reason": reason,
            "stop_sequence": sequence,
            "usage": _usage(self),
        }


# ---------------------------------------------------------------- stream


cdef class _Tool:
    cdef Py_ssize_t index       # its content block
    cdef list arguments         # the argument fragments, checked at the end


cdef class MessagesEvents(AnthropicEncoder):
    """Events in, Anthropic Messages SSE events out (choice 0).

        encoder = MessagesEvents("msg_1", "claude-x", ["###"])
        Converter(ChatDecoder(encoder), encoder).feed(upstream_bytes)
        # b"event: message_start\\ndata: {...}\\n\\nevent: content_block_start\\n..."

    ``message_start`` comes with the first content or the finish (never at
    ``start``: a backend error right after it leaves nothing sent); each run of
    reasoning is a ``thinking`` block (``thinking_delta``), each run of text a
    ``text`` block (``text_delta``), each tool call a ``tool_use`` block
    (``input_json_delta`` with the backend's fragments); ``message_delta``
    (stop reason, usage) and ``message_stop`` at ``end``, unless a tool call's
    arguments are not a JSON object: then ``invalid`` says so and nothing more
    is written.
    """

    def __cinit__(self, *args, **kwargs):
        self._index = -1

    cdef int _message_start(self) except -1:
        self._opened = True
        self._out.append(b"".join((
            _MESSAGE_START, _dumps(self._id), _MESSAGE_START_MODEL, _dumps(self._model),
            _MESSAGE_START_USAGE, str(self.input_tokens).encode(), _MESSAGE_START_END,
        )))
        return 0

    cdef int _start_block(self, bytes block, int kind) except -1:
        if not self._opened:
            self._message_start()
        elif self._open != _NONE:
            self._out.append(_BLOCK_STOP + _index_bytes(self._index) + _BLOCK_STOP_END)
        self._index = self._next
        self._next += 1
        self._open = kind
        self._out.append(b"".join((_BLOCK_START, _index_bytes(self._index), _BLOCK_START_MID, block, _BLOCK_STOP_END)))
        return 0

    cdef int _close_block(self) except -1:
        if self._open != _NONE:
            self._out.append(_BLOCK_STOP + _index_bytes(self._index) + _BLOCK_STOP_END)
            self._open = _NONE
        return 0

    cdef int _run(self, int kind, str text) except -1:
        if self._open != kind:
            self._start_block(_TEXT_BLOCK if kind == _TEXT else _THINKING_BLOCK, kind)
        self._out.append(b"".join((_DELTA, _index_bytes(self._index),
                                   _TEXT_DELTA_MID if kind == _TEXT else _THINKING_DELTA_MID,
                                   _dumps(text), _DELTA_END)))
        return 0

    cdef int _tool(self, int index, str call_id, str name) except -1:
        cdef _Tool tool = _Tool()
        self._start_block(b"".join((_TOOL_BLOCK, _dumps(call_id), _TOOL_BLOCK_NAME, _dumps(name), _TOOL_BLOCK_END)), _TOOL)
        tool.index = self._index
        tool.arguments = []
        self._tools[index] = tool
        return 0

    cdef int _fragment(self, object tool, str fragment) except -1:
        (<_Tool>tool).arguments.append(fragment)
        # A fragment of a call whose block was closed keeps that block's index.
        self._out.append(b"".join((_DELTA, _index_bytes((<_Tool>tool).index), _JSON_DELTA_MID, _dumps(fragment),
                                   _DELTA_END)))
        return 0

    cdef int _finish(self) except -1:
        if not self._opened:
            self._message_start()
        self._close_block()
        return 0

    cpdef end(self):
        cdef _Tool tool
        cdef str joined
        cdef dict usage
        cdef object reason, sequence, value
        if self.ended or self.invalid is not None:
            return
        for tool in self._tools.values():
            joined = "".join(tool.arguments)
            if joined.strip():
                # The fragments went out as they came: an object or nothing.
                try:
                    value = _loads(joined)
                except _JSONDecodeError:
                    value = None
                if not isinstance(value, dict):
                    self.invalid = "tool call arguments are not a JSON object"
                    return
        self._finish()
        reason, sequence = self._stop(bool(self._tools))
        usage = _usage(self) if self.has_usage else {"output_tokens": 0}
        self._out.append(_MESSAGE_DELTA + _dumps({
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": usage,
        }) + _END)
        self._out.append(_MESSAGE_STOP)
        Encoder.end(self)

