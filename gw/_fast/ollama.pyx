# cython: language_level=3
"""Ollama's native API <-> OpenAI: chat requests and answers, the NDJSON stream, embeddings.

Requests go out as ``POST /api/chat`` and ``/api/embed`` bodies; answers and
stream lines come back as OpenAI ``chat.completion`` objects and chunks.
``OllamaStream`` is the push converter ``providers.base.pump`` drives. What
maps to what, and what is dropped, is the conversion table in the README
("Ollama").
"""

import base64
import os
import struct

import orjson

from .convert import DONE_EVENT, InvalidInput
from .convert cimport chunk_event, make_usage, usage_event
from .sse cimport NDJSONDecoder
from .sse import SSEError

_dumps = orjson.dumps
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_b64encode = base64.b64encode
_urandom = os.urandom
_pack = struct.pack

# ------------------------------------------------------------------ constants

_ROLE_DELTA = {"role": "assistant", "content": ""}
_EMPTY = {}

# Ollama done_reason -> OpenAI finish_reason; what is not here ("load",
# "unload", none at all) is "stop".
_FINISH = {"stop": "stop", "length": "length"}

# What closes a content chunk made by hand in OllamaStream (the same bytes
# chunk_event would give, without building the dicts for every token).
_CONTENT_SUFFIX = b'},"logprobs":null,"finish_reason":null}]}\n\n'

_JOIN = "\n"  # between the text parts of one message: Ollama takes one string


cdef inline str _new_call_id():
    return "call_" + _urandom(12).hex()


# ------------------------------------------------------------------ request

cdef object _invalid(str param, str what):
    """InvalidInput("'<param>' <what>", param), for ``raise``."""
    return InvalidInput(f"'{param}' {what}", param)


cdef str _text_of(object content, str param, str role):
    """The text of a system/developer/assistant/tool content: a string, or text
    (and refusal) parts joined with a newline. Other parts are InvalidInput."""
    cdef list texts
    cdef object part, kind, text
    cdef Py_ssize_t j
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _invalid(param, "must be a string or an array of parts")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" or kind == "refusal":
            text = part.get(kind)
            if not isinstance(text, str):
                raise _invalid(f"{param}[{j}].{kind}", "must be a string")
            if text:
                texts.append(text)
        else:
            raise _invalid(f"{param}[{j}]", f"must be a text part: {role} messages take only text")
    return _JOIN.join(texts)


cdef str _image_data(object image, str param):
    """The base64 data of a ``data:<type>;base64,<data>`` image URL.

    Ollama takes images only inline (base64 in ``images``): it does not fetch URLs.
    """
    cdef object url = image.get("url") if isinstance(image, dict) else image
    cdef str head, sep, data
    if isinstance(image, dict):
        param = param + ".url"
    if not isinstance(url, str) or not url:
        raise _invalid(param, "must be a string")
    if not url.startswith("data:"):
        raise InvalidInput(
            f"'{param}': Ollama takes images only inline; send a base64 data URL "
            "(data:image/png;base64,...), not a link", param)
    head, sep, data = url[5:].partition(",")
    if not sep or not head.endswith(";base64") or not data:
        raise _invalid(param, "must be a base64 data URL (data:<type>;base64,...)")
    return data


cdef dict _user_message(object content, str param):
    """A user message: its text parts joined into ``content``, its images in ``images``."""
    cdef list texts, images
    cdef object part, kind, text
    cdef Py_ssize_t j
    cdef dict out
    if content is None or isinstance(content, str):
        return {"role": "user", "content": content or ""}
    if not isinstance(content, list):
        raise _invalid(param, "must be a string or an array of parts")
    texts = []
    images = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise _invalid(f"{param}[{j}].text", "must be a string")
            if text:
                texts.append(text)
        elif kind == "image_url":
            images.append(_image_data(part.get("image_url"), f"{param}[{j}].image_url"))
        else:
            raise _invalid(f"{param}[{j}].type", f"{kind!r} is not supported by Ollama (text and image_url only)")
    out = {"role": "user", "content": _JOIN.join(texts)}
    if images:
        out["images"] = images
    return out


cdef dict _arguments(object args, str param):
    """OpenAI's arguments (a JSON string) as the object Ollama wants; empty -> {}."""
    cdef object parsed
    if args is None:
        return {}
    if isinstance(args, dict):
        return args  # some clients send the object itself
    if not isinstance(args, str):
        raise _invalid(param, "must be a JSON string")
    if not args.strip():
        return {}
    try:
        parsed = _loads(args)
    except _JSONDecodeError:
        raise _invalid(param, "is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise _invalid(param, "must be a JSON object")
    return parsed


cdef list _tool_calls(object calls, str param, dict names):
    """Assistant tool calls as Ollama's ``[{"function": {"name", "arguments"}}]``;
    each call's id is remembered with its name, for the tool results."""
    cdef list out = []
    cdef object call, fn, name, call_id
    cdef Py_ssize_t j
    cdef str where
    if not isinstance(calls, list):
        raise _invalid(param, "must be an array")
    for j, call in enumerate(calls):
        where = f"{param}[{j}]"
        if not isinstance(call, dict) or call.get("type", "function") != "function":
            raise _invalid(where, "must be a function call")
        fn = call.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise _invalid(where + ".function.name", "is required")
        call_id = call.get("id")
        if isinstance(call_id, str) and call_id:
            names[call_id] = name
        out.append({"function": {"name": name, "arguments": _arguments(fn.get("arguments"), where + ".function.arguments")}})
    return out


cdef dict _tool(object fn, str param):
    cdef object name
    cdef dict out
    if not isinstance(fn, dict):
        raise _invalid(param, "must be an object")
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise _invalid(param + ".name", "is required")
    out = {"name": name}
    if isinstance(fn.get("description"), str):
        out["description"] = fn["description"]
    if isinstance(fn.get("parameters"), dict):
        out["parameters"] = fn["parameters"]
    return {"type": "function", "function": out}


cdef list _tools(dict body):
    """``tools`` (and legacy ``functions``) as Ollama tools, after ``tool_choice``:
    "none" sends none, a named function sends only that one; "required" cannot
    be forced on Ollama and acts as "auto"."""
    cdef list out = []
    cdef object tools = body.get("tools")
    cdef object legacy = body.get("functions")
    cdef object tool, choice, fn, name
    cdef str choice_param
    cdef Py_ssize_t j
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidInput("'tools' must be an array", "tools")
        for j, tool in enumerate(tools):
            if not isinstance(tool, dict) or tool.get("type", "function") != "function":
                raise InvalidInput(f"'tools[{j}]': only function tools are supported by Ollama", f"tools[{j}]")
            out.append(_tool(tool.get("function"), f"tools[{j}].function"))
    if isinstance(legacy, list):
        for j, tool in enumerate(legacy):
            out.append(_tool(tool, f"functions[{j}]"))
    if not out:
        return out
    choice_param = "tool_choice"
    choice = body.get("tool_choice")
    if choice is None:
        choice_param = "function_call"
        choice = body.get("function_call")
    if choice is None or choice == "auto" or choice == "required":
        return out
    if choice == "none":
        return []
    if isinstance(choice, dict):
        fn = choice.get("function") if "function" in choice else choice
        name = fn.get("name") if isinstance(fn, dict) else None
        if isinstance(name, str) and name:
            for tool in out:
                if tool["function"]["name"] == name:
                    return [tool]
            raise InvalidInput(f"'{choice_param}' names {name!r}, which is not in 'tools'", choice_param)
    raise InvalidInput(f"'{choice_param}' must be 'auto', 'none', 'required' or a function", choice_param)


cdef dict _options(dict body):
    cdef dict options = {}
    cdef object value, item, native
    native = body.get("options")
    if isinstance(native, dict):
        options.update(native)  # Ollama's own options (num_ctx, top_k, ...), as an extension
    value = body.get("temperature")
    if value is not None:
        options["temperature"] = value
    value = body.get("top_p")
    if value is not None:
        options["top_p"] = value
    value = body.get("top_k")
    if value is not None:
        options["top_k"] = value
    value = body.get("max_completion_tokens")
    if value is None:
        value = body.get("max_tokens")
    if value is not None:
        options["num_predict"] = value
    value = body.get("stop")
    if isinstance(value, str):
        options["stop"] = [value]
    elif isinstance(value, list):
        for item in value:
            if not isinstance(item, str):
                raise InvalidInput("'stop' must be a string or an array of strings", "stop")
        if value:
            options["stop"] = value
    elif value is not None:
        raise InvalidInput("'stop' must be a string or an array of strings", "stop")
    value = body.get("seed")
    if value is not None:
        options["seed"] = value
    value = body.get("presence_penalty")
    if value is not None:
        options["presence_penalty"] = value
    value = body.get("frequency_penalty")
    if value is not None:
        options["frequency_penalty"] = value
    return options


cdef object _format(object fmt):
    """``response_format`` as Ollama's ``format`` ("json" or a JSON schema), or None."""
    cdef object kind, spec
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
            return spec["schema"]
        return "json"
    raise InvalidInput("'response_format.type' must be 'text', 'json_object' or 'json_schema'", "response_format")


cpdef dict chat_request(dict body, str model, bint stream):
    """An OpenAI Chat Completions body as an Ollama ``/api/chat`` body.

    ``stream`` is always set: Ollama streams when it is absent. Raises
    ``InvalidInput`` for what Ollama cannot express (see the README table).
    """
    cdef list messages = []
    cdef dict names = {}    # tool_call_id -> function name, for the tool results
    cdef dict out, message, converted, options
    cdef object role, content, calls, call_id, name, fmt, n
    cdef list tools
    cdef str param
    cdef int i = 0
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidInput("Ollama gives one choice: 'n' must be 1", "n")
    for message in body["messages"]:
        role = message["role"]
        param = f"messages[{i}].content"
        content = message.get("content")
        if role == "user":
            converted = _user_message(content, param)
        elif role == "assistant":
            converted = {"role": "assistant", "content": _text_of(content, param, "assistant")}
            calls = message.get("tool_calls")
            if calls is not None:
                calls = _tool_calls(calls, f"messages[{i}].tool_calls", names)
                if calls:
                    converted["tool_calls"] = calls
        elif role == "tool":
            call_id = message.get("tool_call_id")
            name = names.get(call_id) if isinstance(call_id, str) else None
            if name is None:
                raise _invalid(f"messages[{i}].tool_call_id", "must be the id of a tool call in an earlier assistant message")
            converted = {"role": "tool", "content": _text_of(content, param, "tool"), "tool_name": name}
        elif role == "system" or role == "developer":
            converted = {"role": "system", "content": _text_of(content, param, role)}
        elif role == "function":
            name = message.get("name")
            if not isinstance(name, str) or not name:
                raise _invalid(f"messages[{i}].name", "is required")
            converted = {"role": "tool", "content": _text_of(content, param, "function"), "tool_name": name}
        else:
            raise _invalid(f"messages[{i}].role", f"{role!r} is not supported")
        messages.append(converted)
        i += 1
    out = {"model": model, "messages": messages, "stream": stream}
    tools = _tools(body)
    if tools:
        out["tools"] = tools
    fmt = _format(body.get("response_format"))
    if fmt is not None:
        out["format"] = fmt
    options = _options(body)
    if options:
        out["options"] = options
    return out


# ------------------------------------------------------------------ answer

cdef inline long long _count(dict obj, str key):
    cdef object value = obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return 0


cpdef dict usage_from(dict answer):
    """``prompt_eval_count`` / ``eval_count`` as OpenAI usage (missing -> 0).

    Ollama leaves out ``prompt_eval_count`` when the whole prompt was cached.
    """
    return make_usage(_count(answer, "prompt_eval_count"), _count(answer, "eval_count"))


cdef dict _tool_call(object call):
    """One Ollama tool call as OpenAI's, with a new id (Ollama gives none)."""
    cdef object fn = call.get("function") if isinstance(call, dict) else None
    cdef object name = None
    cdef object args = None
    cdef str arguments
    if isinstance(fn, dict):
        name = fn.get("name")
        args = fn.get("arguments")
    if isinstance(args, str):
        arguments = args if args.strip() else "{}"
    elif args:
        arguments = _dumps(args).decode()
    else:
        arguments = "{}"
    return {
        "id": _new_call_id(),
        "type": "function",
        "function": {"name": name if isinstance(name, str) else "", "arguments": arguments},
    }


cdef inline str _finish(object reason, bint has_calls):
    cdef str finish = _FINISH.get(reason, "stop")
    if has_calls and finish == "stop":
        return "tool_calls"
    return finish


cpdef dict chat_answer(dict answer, str id, long long created, str model):
    """An Ollama ``/api/chat`` answer (``stream: false``) as an OpenAI ``chat.completion``.

    ``message.thinking`` is dropped; tool calls get ``call_<hex>`` ids.
    """
    cdef object message = answer.get("message")
    cdef object content = None
    cdef object calls = None
    cdef list tool_calls = []
    cdef object call
    cdef dict out
    if isinstance(message, dict):
        content = message.get("content")
        calls = message.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            if isinstance(call, dict):
                tool_calls.append(_tool_call(call))
    if not isinstance(content, str):
        content = ""
    out = {
        "role": "assistant",
        "content": content if content or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        out["tool_calls"] = tool_calls
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": out,
            "logprobs": None,
            "finish_reason": _finish(answer.get("done_reason"), bool(tool_calls)),
        }],
        "usage": usage_from(answer),
    }


# ------------------------------------------------------------------ stream

cdef class OllamaStream:
    """Ollama ``/api/chat`` NDJSON lines in, OpenAI chunk events out.

    Each line is one JSON object; the last has ``"done": true`` and the counts.
    That line gives the one finish chunk, the usage chunk (if asked) and
    ``[DONE]``. A ``{"error": ...}`` line (sent after HTTP 200) sets ``error``.
    """

    cdef NDJSONDecoder _decoder
    cdef str _id
    cdef long long _created
    cdef str _model
    cdef bint _include_usage
    cdef bint _started          # the role chunk went out
    cdef int _calls             # tool calls sent so far: the next one's index
    cdef bytes _content_prefix  # a content chunk up to its string value
    cdef readonly object usage  # OpenAI usage, from the done line
    cdef readonly object error  # Ollama's error (a string) sent after HTTP 200
    cdef readonly object invalid
    cdef readonly bint done

    def __init__(self, str id, long long created, str model, bint include_usage):
        self._decoder = NDJSONDecoder()
        self._id = id
        self._created = created
        self._model = model
        self._include_usage = include_usage
        self._started = False
        self._calls = 0
        self._content_prefix = (
            b'data: {"id":' + _dumps(id)
            + b',"object":"chat.completion.chunk","created":' + str(created).encode()
            + b',"model":' + _dumps(model)
            + b',"choices":[{"index":0,"delta":{"content":'
        )
        self.usage = None
        self.error = None
        self.invalid = None
        self.done = False

    cpdef bytes feed(self, bytes chunk):
        cdef list out = []
        cdef list lines
        cdef bytes line
        if self.done or self.error is not None or self.invalid is not None:
            return b""
        try:
            lines = self._decoder.feed(chunk)
        except SSEError as exc:
            self.invalid = str(exc)
            return b""
        for line in lines:
            if self._line(line, out):
                break
        if not out:
            return b""
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    cdef bint _line(self, bytes line, list out) except -1:
        """Convert one line into ``out``; True when the stream ended (done, error, invalid)."""
        cdef object obj, message, content, calls, call, err
        try:
            obj = _loads(line)
        except _JSONDecodeError:
            self.invalid = "a line is not valid JSON"
            return True
        if not isinstance(obj, dict):
            self.invalid = "a line is not a JSON object"
            return True
        err = obj.get("error")
        if err is not None:
            self.error = err
            return True
        if not self._started:
            self._started = True
            out.append(chunk_event(self._id, self._created, self._model, _ROLE_DELTA))
        message = obj.get("message")
        if isinstance(message, dict):
            content = message.get("content")
            if isinstance(content, str) and content:
                out.append(self._content_prefix + _dumps(content) + _CONTENT_SUFFIX)
            calls = message.get("tool_calls")
            if isinstance(calls, list):
                for call in calls:
                    if isinstance(call, dict):
                        # Ollama sends each call whole: one delta each, its own index.
                        out.append(chunk_event(self._id, self._created, self._model,
                                               {"tool_calls": [{"index": self._calls, **_tool_call(call)}]}))
                        self._calls += 1
        if obj.get("done") is True:
            self.usage = usage_from(obj)
            out.append(chunk_event(self._id, self._created, self._model, _EMPTY,
                                   _finish(obj.get("done_reason"), self._calls > 0)))
            if self._include_usage:
                out.append(usage_event(self._id, self._created, self._model, self.usage))
            out.append(DONE_EVENT)
            self.done = True
            return True
        return False

    cpdef bytes close(self):
        """At EOF: a last line without its newline, converted; b"" otherwise."""
        cdef list out = []
        cdef bytes line
        if self.done or self.error is not None or self.invalid is not None:
            return b""
        for line in self._decoder.close():
            if self._line(line, out):
                break
        return b"".join(out)


# ------------------------------------------------------------------ embeddings

cpdef list embedding_inputs(dict body):
    """The texts of an OpenAI embeddings body; token arrays are an ``InvalidInput``."""
    cdef object value = body.get("input")
    cdef object item
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        for item in value:
            if not isinstance(item, str):
                break
        else:
            return value
    raise InvalidInput("Ollama embeds text only: 'input' must be a string or an array of strings "
                       "(token arrays are not supported)", "input")


cpdef dict embed_request(dict body, str model):
    """An ``/api/embed`` body: ``input`` as the client gave it, ``dimensions``,
    and ``truncate: true`` (Ollama's default, said explicitly so an input over
    the model's context is cut, not an error, whatever the server's version)."""
    cdef dict out = {"model": model, "input": body.get("input"), "truncate": True}
    cdef object dimensions = body.get("dimensions")
    embedding_inputs(body)
    if dimensions is not None:
        out["dimensions"] = dimensions
    return out


cpdef object embed_answer(dict answer, Py_ssize_t count, str model, bint as_base64):
    """An ``/api/embed`` answer as an OpenAI embeddings list, or None when it
    does not hold ``count`` vectors. base64: little-endian float32, as OpenAI does."""
    cdef object embeddings = answer.get("embeddings")
    cdef list data = []
    cdef object values
    cdef long long tokens
    cdef Py_ssize_t i
    if not isinstance(embeddings, list) or len(embeddings) != count:
        return None
    for i in range(count):
        values = embeddings[i]
        if not isinstance(values, list):
            return None
        if as_base64:
            values = _b64encode(_pack(f"<{len(values)}f", *values)).decode()
        data.append({"object": "embedding", "index": i, "embedding": values})
    tokens = _count(answer, "prompt_eval_count")
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
