# cython: language_level=3
"""The OpenAI Responses API as a client protocol, on any backend.

``to_chat`` converts a Responses request (``client.responses.create(...)``,
the Codex CLI) into a Chat Completions request (the form every converting
adapter takes). The encoders write gw's events (events.pxd) as Responses
answers: ``ResponseEvents`` the exact SSE event sequence (``response.created``
... ``response.completed``), ``ResponseAnswer`` a whole ``Response``; any
backend decoder drives them. Both take the request body: it names the custom
(freeform) tools, whose calls are ``custom_tool_call`` items, and gives the
fields every Response repeats (``tools``, ``tool_choice``, ``instructions``...).
"""

import os
import time

import orjson

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdio cimport snprintf

from .rules import InvalidInput
from .events cimport Encoder
from .rules cimport max_tokens, new_id, stream_with_usage

_dumps = orjson.dumps
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_urandom = os.urandom
_time = time.time


cpdef str response_id():
    """A new Response id: ``resp_`` and 32 hex digits."""
    return "resp_" + _urandom(16).hex()


# ---------------------------------------------------------------- request


# Request fields that need state gw does not keep (converted backends have none).
_REFUSED = {
    "previous_response_id": "gw keeps no history on converted backends: send the full conversation in "
                            "'input' (store: false), as the Codex CLI does",
    "conversation": "gw keeps no conversations on converted backends: send the full conversation in 'input'",
    "prompt": "stored prompts live on OpenAI's servers: send 'instructions' and 'input'",
}

_EMPTY_SCHEMA = {"type": "object", "properties": {}}
_CUSTOM_NOTE = "Put the tool's freeform input, exactly as it would be sent, in the string parameter `input`."


cdef object _bad(str param, str what):
    return InvalidInput(f"'{param}' {what}", param)


cdef str _string(object value, str param):
    if not isinstance(value, str):
        raise _bad(param, "must be a string")
    return <str>value


cdef dict _object(object value, str param):
    if not isinstance(value, dict):
        raise _bad(param, "must be an object")
    return <dict>value


cdef dict _text_part(str text):
    return {"type": "text", "text": text}


cdef object _content_of(list parts):
    """One text part is a plain string (what every backend reads); none is ""."""
    cdef dict first
    if not parts:
        return ""
    if len(parts) == 1:
        first = parts[0]
        if first["type"] == "text":
            return first["text"]
    return parts


cdef dict _image_part(dict part, str param):
    cdef object url = part.get("image_url")
    cdef object detail
    cdef dict image
    if not isinstance(url, str) or not url:
        if part.get("file_id") is not None:
            raise InvalidInput(f"'{param}.file_id': files stored at OpenAI cannot be sent to this model's "
                               "backend: send the image as 'image_url' (a URL or a base64 data URL)",
                               f"{param}.file_id")
        raise _bad(f"{param}.image_url", "must be a URL or a base64 data URL")
    image = {"url": url}
    detail = part.get("detail")
    if detail == "low" or detail == "high" or detail == "auto":
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


cdef dict _file_part(dict part, str param):
    cdef object data = part.get("file_data")
    cdef object name
    cdef dict file
    if not isinstance(data, str) or not data:
        raise InvalidInput(f"'{param}.file_data' is required: this model's backend needs the file inline "
                           "(a base64 data URL); 'file_id' and 'file_url' are not supported",
                           f"{param}.file_data")
    file = {"file_data": data}
    name = part.get("filename")
    if isinstance(name, str):
        file["filename"] = name
    return {"type": "file", "file": file}


cdef list _parts(object content, str param, str role):
    """A message's content parts as chat parts; what ``role`` cannot hold is a 400."""
    cdef list out = []
    cdef dict part
    cdef object kind
    cdef str at
    cdef Py_ssize_t j
    for j in range(len(<list>content)):
        at = f"{param}[{j}]"
        part = _object((<list>content)[j], at)
        kind = part.get("type")
        if kind == "input_text" or kind == "output_text" or kind == "text":
            out.append(_text_part(_string(part.get("text"), at + ".text")))
        elif kind == "refusal" and role == "assistant":
            out.append({"type": "refusal", "refusal": _string(part.get("refusal"), at + ".refusal")})
        elif kind == "input_image" and role == "user":
            out.append(_image_part(part, at))
        elif kind == "input_file" and role == "user":
            out.append(_file_part(part, at))
        else:
            raise InvalidInput(f"'{at}.type' {kind!r} cannot be sent to this model's backend in a {role} message",
                               f"{at}.type")
    return out


cdef dict _message(dict item, str param):
    cdef object role = item.get("role")
    cdef object content = item.get("content")
    if role == "developer":
        role = "system"  # the one instruction role every backend reads
    elif role != "user" and role != "assistant" and role != "system":
        raise _bad(f"{param}.role", "must be 'user', 'assistant', 'system' or 'developer'")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise _bad(f"{param}.content", "must be a string or an array of content parts")
    return {"role": role, "content": _content_of(_parts(content, f"{param}.content", role))}


cdef int _call(list messages, str call_id, str name, str arguments) except -1:
    """A tool call joins the assistant message just before it (its text, or the
    calls before it): one assistant turn, as Chat Completions writes it."""
    cdef dict call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    cdef dict last
    cdef object calls
    if messages:
        last = messages[-1]
        if last["role"] == "assistant":
            calls = last.get("tool_calls")
            if calls is None:
                last["tool_calls"] = [call]
            else:
                (<list>calls).append(call)
            return 0
    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    return 0


cdef str _tool_output(object output, str param, list media):
    """A tool output's text: a string, or its ``input_text`` parts joined; its
    images and files go to ``media`` (a chat tool message holds text only)."""
    cdef list texts
    cdef dict part
    cdef object kind
    cdef str at
    cdef Py_ssize_t j
    if isinstance(output, str):
        return <str>output
    if not isinstance(output, list):
        raise _bad(param, "must be a string or an array of content parts")
    texts = []
    for j in range(len(<list>output)):
        at = f"{param}[{j}]"
        part = _object((<list>output)[j], at)
        kind = part.get("type")
        if kind == "input_text":
            texts.append(_string(part.get("text"), at + ".text"))
        elif kind == "input_image":
            media.append(_image_part(part, at))
        elif kind == "input_file":
            media.append(_file_part(part, at))
        else:
            raise InvalidInput(f"'{at}.type' {kind!r} cannot be sent to this model's backend in a tool output",
                               f"{at}.type")
    return "\n".join(texts)


cdef list _input(object raw, list messages, dict names):
    """The ``input`` items, appended to ``messages`` as chat messages (``names``: a
    namespaced tool's chat name, ``_chat_names``)."""
    cdef list media = []
    cdef dict item
    cdef object kind, arguments
    cdef str param
    cdef Py_ssize_t i
    if isinstance(raw, str):
        messages.append({"role": "user", "content": raw})
        return messages
    if not isinstance(raw, list) or not raw:
        raise _bad("input", "must be a string or a non-empty array of items")
    for i in range(len(<list>raw)):
        param = f"input[{i}]"
        item = _object((<list>raw)[i], param)
        kind = item.get("type")
        if kind == "function_call_output" or kind == "custom_tool_call_output":
            messages.append({"role": "tool", "tool_call_id": _string(item.get("call_id"), param + ".call_id"),
                             "content": _tool_output(item.get("output"), param + ".output", media)})
            continue
        if media:
            # The images of the tool outputs just before (a view_image tool's) follow them as
            # the user's: chat wants the tool messages right after their calls.
            messages.append({"role": "user", "content": media})
            media = []
        if kind is None or kind == "message":
            messages.append(_message(item, param))
        elif kind == "function_call":
            arguments = item.get("arguments")
            if isinstance(arguments, dict):
                arguments = _dumps(arguments).decode()
            _call(messages, _string(item.get("call_id"), param + ".call_id"),
                  _chat_name(item, param, names), _string(arguments, param + ".arguments"))
        elif kind == "custom_tool_call":
            # A custom tool is a function with one string parameter on a chat backend.
            arguments = _dumps({"input": _string(item.get("input"), param + ".input")}).decode()
            _call(messages, _string(item.get("call_id"), param + ".call_id"),
                  _chat_name(item, param, names), arguments)
        elif kind == "reasoning":
            # A reasoning item (its summary, its encrypted content) is the model's own:
            # no chat backend takes it back.
            continue
        elif kind == "additional_tools":
            continue  # tools (Codex sends its own this way): read by _offered
        else:
            raise InvalidInput(f"'{param}.type' {kind!r} cannot be sent to this model's backend: only messages, "
                               "function and custom tool calls, their outputs and reasoning are", f"{param}.type")
    if media:
        messages.append({"role": "user", "content": media})
    return messages


cdef dict _custom_function(dict tool, str name, str param):
    cdef object description = tool.get("description")
    cdef object fmt = tool.get("format")
    cdef list text = []
    if description is not None:
        text.append(_string(description, param + ".description"))
    if fmt is not None:
        fmt = _object(fmt, param + ".format")
        if (<dict>fmt).get("type") == "grammar":
            text.append(f"The input must follow this {(<dict>fmt).get('syntax')} grammar:\n"
                        + _string((<dict>fmt).get("definition"), param + ".format.definition"))
    text.append(_CUSTOM_NOTE)
    return {
        "name": name,
        "description": "\n\n".join(text),
        "parameters": {
            "type": "object",
            "properties": {"input": {"type": "string", "description": "The tool's freeform input."}},
            "required": ["input"],
            "additionalProperties": False,
        },
    }


cdef int _collect(object tools, object namespace, str param, list out) except -1:
    cdef Py_ssize_t k
    cdef dict tool
    cdef str at
    if tools is None:
        return 0
    if not isinstance(tools, list):
        raise _bad(param, "must be an array")
    for k in range(len(<list>tools)):
        at = f"{param}[{k}]"
        tool = _object((<list>tools)[k], at)
        if tool.get("type") == "namespace" and namespace is None:
            _collect(tool.get("tools"), _string(tool.get("name"), at + ".name"), at + ".tools", out)
        else:
            out.append((tool, namespace, at))
    return 0


cdef list _offered(dict body):
    """(tool, namespace or None, param) of each tool the request offers: ``tools`` and the
    tools of ``additional_tools`` input items (Codex's), namespaces expanded."""
    cdef list out = []
    cdef object raw = body.get("input")
    cdef object item
    cdef Py_ssize_t i
    _collect(body.get("tools"), None, "tools", out)
    if isinstance(raw, list):
        for i in range(len(<list>raw)):
            item = (<list>raw)[i]
            if isinstance(item, dict) and (<dict>item).get("type") == "additional_tools":
                _collect((<dict>item).get("tools"), None, f"input[{i}].tools", out)
    return out


cdef dict _chat_names(list offered):
    """(namespace, name) -> the chat function's name: the name itself, or
    ``{namespace}__{name}`` where more than one offered tool has that name."""
    cdef dict seen = {}
    cdef dict out = {}
    cdef object name
    for tool, namespace, _ in offered:
        name = (<dict>tool).get("name")
        if isinstance(name, str):
            seen[name] = seen.get(name, 0) + 1
    for tool, namespace, _ in offered:
        name = (<dict>tool).get("name")
        if isinstance(name, str):
            out[(namespace, name)] = f"{namespace}__{name}" if namespace is not None and seen[name] > 1 else name
    return out


cdef str _chat_name(dict item, str param, dict names):
    """A history call's name as the chat backend knows the tool."""
    cdef str name = _string(item.get("name"), param + ".name")
    cdef object namespace = item.get("namespace")
    return names.get((namespace if isinstance(namespace, str) else None, name), name)


cdef list _tools(list offered, dict names):
    cdef list out = []
    cdef dict tool, function
    cdef object kind, value, namespace
    cdef str name, param
    for tool, namespace, param in offered:
        kind = tool.get("type")
        name = _string(tool.get("name"), param + ".name") if kind == "function" or kind == "custom" else None
        if name is not None:
            name = names[(namespace, name)]
        if kind == "function":
            function = {"name": name}
            value = tool.get("description")
            if value is not None:
                function["description"] = _string(value, param + ".description")
            value = tool.get("parameters")
            if value is None:
                value = _EMPTY_SCHEMA
            elif not isinstance(value, dict):
                raise _bad(param + ".parameters", "must be an object")
            function["parameters"] = value
            value = tool.get("strict")
            if isinstance(value, bool):
                function["strict"] = value
        elif kind == "custom":
            function = _custom_function(tool, name, param)
        else:
            raise InvalidInput(f"'{param}.type' {kind!r}: only 'function' and 'custom' tools can be sent to this "
                               "model's backend (OpenAI's built-in tools run on OpenAI's servers)", param + ".type")
        out.append({"type": "function", "function": function})
    return out


cdef object _tool_choice(object choice):
    cdef object kind, name
    if choice == "auto" or choice == "none" or choice == "required":
        return choice
    if isinstance(choice, dict):
        kind = (<dict>choice).get("type")
        if kind == "function" or kind == "custom":
            name = _string((<dict>choice).get("name"), "tool_choice.name")
            return {"type": "function", "function": {"name": name}}
    raise _bad("tool_choice", "must be 'auto', 'none', 'required' or {\"type\": \"function\" or \"custom\", "
                              "\"name\": ...} for this model's backend")


cdef object _response_format(object text):
    """``text.format`` as a chat ``response_format``; None for plain text."""
    cdef object fmt, kind, value
    cdef dict spec
    if text is None:
        return None
    fmt = _object(text, "text").get("format")
    if fmt is None:
        return None
    kind = _object(fmt, "text.format").get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema":
        raise _bad("text.format.type", "must be 'text', 'json_object' or 'json_schema'")
    spec = {
        "name": _string((<dict>fmt).get("name", "output"), "text.format.name"),
        "schema": _object((<dict>fmt).get("schema"), "text.format.schema"),
    }
    value = (<dict>fmt).get("description")
    if value is not None:
        spec["description"] = _string(value, "text.format.description")
    value = (<dict>fmt).get("strict")
    if isinstance(value, bool):
        spec["strict"] = value
    return {"type": "json_schema", "json_schema": spec}


cpdef dict to_chat(dict body):
    """An OpenAI Responses request as an OpenAI Chat Completions request."""
    cdef list messages = []
    cdef dict out
    cdef object value, tools, reasoning
    cdef list offered
    cdef dict names
    for name, why in _REFUSED.items():
        if body.get(name) is not None:
            raise InvalidInput(f"'{name}': {why}", name)
    if body.get("background") is True:
        raise InvalidInput("'background': background responses need a store gw does not keep on converted "
                           "backends: stream the response instead", "background")
    value = body.get("instructions")
    if value is not None:
        value = _string(value, "instructions")
        if value:
            messages.append({"role": "system", "content": value})
    offered = _offered(body)
    names = _chat_names(offered)
    _input(body.get("input"), messages, names)
    out = {"model": body.get("model"), "messages": messages}
    value = max_tokens(body, None)
    if value is not None:
        # Not max_tokens: OpenAI's reasoning models refuse it; every converter reads this one.
        out["max_completion_tokens"] = value
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None:
            out[name] = value
    value = body.get("user")
    if not isinstance(value, str):
        value = body.get("safety_identifier")
    if isinstance(value, str):
        out["user"] = value
    if offered:
        tools = _tools(offered, names)
        if tools:
            out["tools"] = tools
            value = body.get("tool_choice")
            if value is not None:
                out["tool_choice"] = _tool_choice(value)
            value = body.get("parallel_tool_calls")
            if isinstance(value, bool):
                out["parallel_tool_calls"] = value
    value = _response_format(body.get("text"))
    if value is not None:
        out["response_format"] = value
    reasoning = body.get("reasoning")
    if reasoning is not None:
        value = _object(reasoning, "reasoning").get("effort")
        if value is not None:
            # The converters map it to each backend's thinking control (and check the level).
            out["reasoning_effort"] = _string(value, "reasoning.effort")
    stream_with_usage(body, out)  # response.completed needs the usage of the last chunk
    return out


# ---------------------------------------------------------------- answer


cdef enum:
    _MESSAGE = 1
    _REASONING = 2
    _CALL = 3
    _CUSTOM = 4

cdef dict _PREFIX = {_MESSAGE: "msg_", _REASONING: "rs_", _CALL: "fc_", _CUSTOM: "ctc_"}


cdef class _Item:
    """One output item: a run of text (message), of reasoning, or a tool call."""
    cdef int kind
    cdef Py_ssize_t index       # its output_index
    cdef str id
    cdef list parts             # its text, reasoning or argument fragments
    cdef str call_id
    cdef str name
    cdef object namespace       # a namespaced tool's namespace (Codex's), or None
    cdef bytes head             # b',"item_id":"...","output_index":N,...,"delta":': its deltas' middle
    cdef str status             # None while open

    cdef str text(self):
        return "".join(self.parts)

    cdef str arguments(self):
        cdef str text = "".join(self.parts)
        return text if text.strip() else "{}"

    cdef str input(self):
        """A custom call's input: the ``input`` string of its arguments, else their text."""
        cdef str text = "".join(self.parts)
        cdef object value
        try:
            value = _loads(text)
        except _JSONDecodeError:
            return text
        if isinstance(value, dict) and isinstance((<dict>value).get("input"), str):
            return (<dict>value)["input"]
        return text

    cdef dict as_dict(self, bint whole):
        """The item as the Response holds it; not ``whole``: as it is added (empty)."""
        cdef dict item
        cdef str status = self.status if whole and self.status is not None else "in_progress"
        if self.kind == _MESSAGE:
            return {"id": self.id, "type": "message", "status": status, "role": "assistant",
                    "content": [_output_text_part(self.text())] if whole else []}
        if self.kind == _REASONING:
            return {"id": self.id, "type": "reasoning",
                    "summary": [{"type": "summary_text", "text": self.text()}] if whole else []}
        if self.kind == _CALL:
            item = {"id": self.id, "type": "function_call", "status": status, "call_id": self.call_id,
                    "name": self.name, "arguments": self.arguments() if whole else ""}
        else:
            item = {"id": self.id, "type": "custom_tool_call", "status": status, "call_id": self.call_id,
                    "name": self.name, "input": self.input() if whole else ""}
        if self.namespace is not None:
            item["namespace"] = self.namespace
        return item


cdef dict _output_text_part(str text):
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


cdef dict _tool_table(dict request):
    """The chat name of each offered tool -> (its name, its namespace or None, custom or not):
    how a backend's tool call is written back. A request whose tools cannot be read has
    none here (to_chat refuses it before any backend is asked)."""
    cdef list offered
    cdef dict names, out = {}
    try:
        offered = _offered(request)
    except InvalidInput:
        return out
    names = _chat_names(offered)
    for tool, namespace, _ in offered:
        name = (<dict>tool).get("name")
        if isinstance(name, str):
            out[names[(namespace, name)]] = (name, namespace, (<dict>tool).get("type") == "custom")
    return out


cdef dict _echo(dict request):
    """The request fields a Response repeats, with the API's defaults."""
    cdef object tools = request.get("tools")
    cdef object metadata = request.get("metadata")
    return {
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "metadata": metadata if isinstance(metadata, dict) else {},
        "parallel_tool_calls": request.get("parallel_tool_calls") is not False,
        "previous_response_id": None,
        "prompt_cache_key": request.get("prompt_cache_key"),
        "reasoning": request.get("reasoning"),
        "safety_identifier": request.get("safety_identifier"),
        "service_tier": request.get("service_tier") or "default",
        "store": False,  # gw stores no response
        "temperature": request.get("temperature"),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": tools if isinstance(tools, list) else [],
        "top_p": request.get("top_p"),
        "truncation": request.get("truncation") or "disabled",
        "user": request.get("user"),
    }


cdef dict _usage(Encoder encoder):
    """Responses usage: ``input_tokens`` counts every input token, cached or not
    (``rules.make_usage``'s prompt_tokens)."""
    cdef long long prompt = encoder.input_tokens + encoder.cache_read_tokens + encoder.cache_write_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": encoder.cache_read_tokens,
                                 "cache_write_tokens": encoder.cache_write_tokens},
        "output_tokens": encoder.output_tokens,
        "output_tokens_details": {"reasoning_tokens": encoder.reasoning_tokens},
        "total_tokens": prompt + encoder.output_tokens,
    }


cdef dict _base(str id, long long created, str model, str status):
    return {"id": id, "object": "response", "created_at": created, "status": status, "background": False,
            "error": None, "incomplete_details": None, "model": model, "output": [], "usage": None}


cdef class ResponsesEncoder(Encoder):
    """What both Responses encoders share: choice 0 only (Responses has no
    others), each run of text a ``message`` item, each run of reasoning a
    ``reasoning`` item, each tool call a ``function_call`` (or, for the
    request's custom tools, ``custom_tool_call``) item, in the order they came."""

    def __init__(self, str response_id, long long created_at, str model, dict request):
        self._id = response_id
        self._created = created_at
        self._model = model
        self._echo = _echo(request)
        self._tools = _tool_table(request)
        self._items = []
        self._calls = {}

    cpdef text(self, int choice, str text):
        if choice == 0:
            self._run(_MESSAGE, text)

    cpdef reasoning(self, int choice, str text):
        if choice == 0:
            self._run(_REASONING, text)

    cpdef tool_start(self, int choice, int index, str call_id, str name, object extra):
        cdef _Item item
        cdef tuple tool
        if choice != 0:
            return
        if self._open is not None:
            self._close(self._open, "completed")
            self._open = None
        item = _Item()
        tool = self._tools.get(name)
        item.kind = _CUSTOM if tool is not None and tool[2] else _CALL
        item.index = len(self._items)
        item.id = new_id(_PREFIX[item.kind])
        item.parts = []
        item.call_id = call_id or new_id("call_")
        item.name = tool[0] if tool is not None else name
        item.namespace = tool[1] if tool is not None else None
        self._items.append(item)
        self._calls[index] = item
        self._added(item)

    cpdef tool_args(self, int choice, int index, str fragment):
        cdef _Item item = self._calls.get(index) if choice == 0 else None
        if item is not None:
            item.parts.append(fragment)
            if item.kind == _CALL:
                # A fragment of a call already ended still goes out with its item's id
                # (and counts in the final Response).
                self._delta(item, fragment)

    cpdef finish(self, int choice, str reason, object matched):
        if choice != 0:
            return
        Encoder.finish(self, choice, reason, matched)
        self._reason = reason
        self._close_all("incomplete" if reason == "length" or reason == "content_filter" else "completed")

    cpdef end(self):
        if self.ended:
            return
        if not self.finished:
            self._close_all("completed")
        Encoder.end(self)

    cdef int _run(self, int kind, str text) except -1:
        cdef _Item item = self._open
        if item is None or item.kind != kind:
            # A new kind: the open items end (the tool calls too).
            self._close_all("completed")
            item = _Item()
            item.kind = kind
            item.index = len(self._items)
            item.id = new_id(_PREFIX[kind])
            item.parts = []
            self._items.append(item)
            self._open = item
            self._added(item)
        item.parts.append(text)
        self._delta(item, text)
        return 0

    cdef int _close_all(self, str status) except -1:
        cdef _Item item
        if self._open is not None:
            self._close(self._open, status)
            self._open = None
        for item in self._calls.values():
            if item.status is None:
                self._close(item, status)
        return 0

    cdef int _close(self, object item, str status) except -1:
        (<_Item>item).status = status
        self._done(item)
        return 0

    cdef int _added(self, object item) except -1:
        return 0

    cdef int _delta(self, object item, str text) except -1:
        return 0

    cdef int _done(self, object item) except -1:
        return 0

    cdef dict _response(self, bint final):
        """The Response: ``final``, with the output, the status and the usage;
        else as it begins (in progress, no output)."""
        cdef dict response
        cdef _Item item
        cdef str status = "in_progress"
        if final:
            status = "completed"
            if self._reason == "length":
                status = "incomplete"
            elif self._reason == "content_filter":
                status = "incomplete"
        response = _base(self._id, self._created, self._model, status)
        response.update(self._echo)
        if final:
            if status == "incomplete":
                response["incomplete_details"] = {
                    "reason": "max_output_tokens" if self._reason == "length" else "content_filter"}
            else:
                response["completed_at"] = int(_time())
            response["output"] = [item.as_dict(True) for item in self._items]
            if self.has_usage:
                response["usage"] = _usage(self)
        return response


cdef class ResponseAnswer(ResponsesEncoder):
    """Events in, a Responses ``Response`` out (choice 0).

        encoder = ResponseAnswer(response_id(), int(time.time()), "gpt-x", body)
        read_answer(chat_completion, encoder)
        encoder.answer()   # {"id": "resp_...", "object": "response", "output": [...], ...}
    """

    cpdef dict answer(self):
        """The ``Response``."""
        return self._response(True)


# ---------------------------------------------------------------- stream


# Every event is `event: <type>\ndata: {"type":<type>,"sequence_number":N,...}\n\n`;
# the deltas are written from these pieces, the other events with orjson.
_TEXT_DELTA = (b'event: response.output_text.delta\n'
               b'data: {"type":"response.output_text.delta","sequence_number":')
_TEXT_DELTA_MID = b',"content_index":0,"delta":'
_TEXT_DELTA_END = b',"logprobs":[]}\n\n'
_SUMMARY_DELTA = (b'event: response.reasoning_summary_text.delta\n'
                  b'data: {"type":"response.reasoning_summary_text.delta","sequence_number":')
_SUMMARY_DELTA_MID = b',"summary_index":0,"delta":'
_ARGS_DELTA = (b'event: response.function_call_arguments.delta\n'
               b'data: {"type":"response.function_call_arguments.delta","sequence_number":')
_ARGS_DELTA_MID = b',"delta":'
_DELTA_END = b"}\n\n"
_EVENT = b"event: "
_DATA = b"\ndata: "
_END = b"\n\n"

_CREATED = b"response.created"
_IN_PROGRESS = b"response.in_progress"
_COMPLETED = b"response.completed"
_INCOMPLETE = b"response.incomplete"
_FAILED = b"response.failed"
_ITEM_ADDED = b"response.output_item.added"
_ITEM_DONE = b"response.output_item.done"
_PART_ADDED = b"response.content_part.added"
_PART_DONE = b"response.content_part.done"
_TEXT_DONE = b"response.output_text.done"
_SUMMARY_PART_ADDED = b"response.reasoning_summary_part.added"
_SUMMARY_PART_DONE = b"response.reasoning_summary_part.done"
_SUMMARY_DONE = b"response.reasoning_summary_text.done"
_ARGS_DONE = b"response.function_call_arguments.done"
_INPUT_DELTA = b"response.custom_tool_call_input.delta"
_INPUT_DONE = b"response.custom_tool_call_input.done"


cdef bytes _sse(bytes kind, dict data):
    return b"".join((_EVENT, kind, _DATA, _dumps(data), _END))


cpdef bytes response_failed(str response_id, long long created_at, str model, long long sequence_number,
                            str message, str code):
    """The ``response.failed`` event that ends a stream the backend broke."""
    cdef dict response = _base(response_id, created_at, model, "failed")
    response["error"] = {"code": code, "message": message}
    response["parallel_tool_calls"] = True
    response["tool_choice"] = "auto"
    response["tools"] = []
    return _sse(_FAILED, {"type": "response.failed", "sequence_number": sequence_number, "response": response})


cdef class ResponseEvents(ResponsesEncoder):
    """Events in, the Responses SSE events out (choice 0).

        encoder = ResponseEvents(response_id(), int(time.time()), "gpt-x", body)
        Converter(ChatDecoder(encoder), encoder).feed(upstream_bytes)
        # b"event: response.created\\ndata: {...}\\n\\nevent: response.in_progress\\n..."
    """

    cdef int _begin(self) except -1:
        # Not at start(): a backend error right after its start leaves nothing sent.
        cdef bytes response
        cdef bytes kind
        if self._opened:
            return 0
        self._opened = True
        # The same Response twice (with the request's tools, maybe long): encoded once.
        response = _dumps(self._response(False))
        for kind in (_CREATED, _IN_PROGRESS):
            self._out.append(b"".join((_EVENT, kind, b'\ndata: {"type":"', kind, b'","sequence_number":',
                                       str(self.sequence_number).encode(), b',"response":', response, _DELTA_END)))
            self.sequence_number += 1
        return 0

    cdef int _event(self, bytes kind, dict data) except -1:
        cdef dict event = {"type": kind.decode(), "sequence_number": self.sequence_number}
        event.update(data)
        self.sequence_number += 1
        self._out.append(_sse(kind, event))
        return 0

    cdef int _added(self, object item) except -1:
        cdef _Item it = <_Item>item
        self._begin()
        it.head = b"".join((b',"item_id":', _dumps(it.id), b',"output_index":', str(it.index).encode(),
                            _TEXT_DELTA_MID if it.kind == _MESSAGE else
                            _SUMMARY_DELTA_MID if it.kind == _REASONING else _ARGS_DELTA_MID))
        self._event(_ITEM_ADDED, {"output_index": it.index, "item": it.as_dict(False)})
        if it.kind == _MESSAGE:
            self._event(_PART_ADDED, {"item_id": it.id, "output_index": it.index, "content_index": 0,
                                      "part": _output_text_part("")})
        elif it.kind == _REASONING:
            self._event(_SUMMARY_PART_ADDED, {"item_id": it.id, "output_index": it.index, "summary_index": 0,
                                              "part": {"type": "summary_text", "text": ""}})
        return 0

    cdef int _delta(self, object item, str text) except -1:
        cdef _Item it = <_Item>item
        cdef char digits[24]
        cdef bytes seq = PyBytes_FromStringAndSize(digits, snprintf(digits, 24, "%lld", self.sequence_number))
        self.sequence_number += 1
        if it.kind == _MESSAGE:
            self._out.append(b"".join((_TEXT_DELTA, seq, it.head, _dumps(text), _TEXT_DELTA_END)))
        elif it.kind == _REASONING:
            self._out.append(b"".join((_SUMMARY_DELTA, seq, it.head, _dumps(text), _DELTA_END)))
        else:
            self._out.append(b"".join((_ARGS_DELTA, seq, it.head, _dumps(text), _DELTA_END)))
        return 0

    cdef int _done(self, object item) except -1:
        cdef _Item it = <_Item>item
        cdef str text
        if it.kind == _MESSAGE:
            text = it.text()
            self._event(_TEXT_DONE, {"item_id": it.id, "output_index": it.index, "content_index": 0,
                                     "text": text, "logprobs": []})
            self._event(_PART_DONE, {"item_id": it.id, "output_index": it.index, "content_index": 0,
                                     "part": _output_text_part(text)})
        elif it.kind == _REASONING:
            text = it.text()
            self._event(_SUMMARY_DONE, {"item_id": it.id, "output_index": it.index, "summary_index": 0,
                                        "text": text})
            self._event(_SUMMARY_PART_DONE, {"item_id": it.id, "output_index": it.index, "summary_index": 0,
                                             "part": {"type": "summary_text", "text": text}})
        elif it.kind == _CALL:
            self._event(_ARGS_DONE, {"item_id": it.id, "output_index": it.index, "arguments": it.arguments()})
        else:
            # The input is inside the argument JSON: known only now that the call ended.
            text = it.input()
            if text:
                self._event(_INPUT_DELTA, {"item_id": it.id, "output_index": it.index, "delta": text})
            self._event(_INPUT_DONE, {"item_id": it.id, "output_index": it.index, "input": text})
        self._event(_ITEM_DONE, {"output_index": it.index, "item": it.as_dict(True)})
        return 0

    cpdef finish(self, int choice, str reason, object matched):
        if choice == 0:
            self._begin()
        ResponsesEncoder.finish(self, choice, reason, matched)

    cpdef end(self):
        cdef dict response
        if self.ended:
            return
        self._begin()
        ResponsesEncoder.end(self)
        response = self._response(True)
        self._event(_INCOMPLETE if response["status"] == "incomplete" else _COMPLETED, {"response": response})
