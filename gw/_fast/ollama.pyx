# cython: language_level=3
"""Ollama's native API <-> OpenAI: chat requests, the answer decoder, embeddings.

``chat_request`` turns an OpenAI body into a ``POST /api/chat`` body.
``OllamaDecoder`` turns Ollama's NDJSON stream, and ``read_answer`` a whole
``/api/chat`` answer, into the events of ``events.Sink``; ``OllamaStream`` and
``chat_answer`` are that decoder driving the chat encoders (``chat.ChatChunks``,
``chat.ChatAnswer``). ``embed_request``/``embed_answer`` are ``/api/embed``.
What maps to what, and what is dropped, is the conversion table in the README
("Ollama").
"""

import base64
import struct

import orjson

from .rules import InvalidInput
from .chat cimport ChatAnswer, ChatChunks
from .events cimport Converter, Sink
from .rules cimport (count as token_count, data_url, embedding_inputs as _embedding_inputs, finish_reason,
                     make_usage, max_tokens, new_id, stop_list, tool_arguments, where)
from .sse cimport NDJSONDecoder
from .sse import SSEError

_dumps = orjson.dumps
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_b64encode = base64.b64encode
_pack = struct.pack

# ------------------------------------------------------------------ constants

# Ollama done_reason -> OpenAI finish_reason (rules.finish_reason); what is not
# here ("load", "unload", none at all) is "stop".
_FINISH = {"stop": "stop", "length": "length"}

# OpenAI reasoning_effort -> Ollama ``think``. "none" turns a thinking model's
# thinking off; any other effort turns it on. A level string ("low", ...) would
# reach only gpt-oss: Ollama 0.11-0.12 answer it with a 400 for every other model.
_THINK = {"none": False, "minimal": True, "low": True, "medium": True, "high": True}

_JOIN = "\n"  # between the text parts of one message: Ollama takes one string


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
    cdef tuple inline
    if isinstance(image, dict):
        param = param + ".url"
    if not isinstance(url, str) or not url:
        raise _invalid(param, "must be a string")
    inline = data_url(url, param)
    if inline is None:
        raise InvalidInput(
            f"'{param}': Ollama takes images only inline; send a base64 data URL "
            "(data:image/png;base64,...), not a link", param)
    if not inline[1]:
        raise _invalid(param, "must be a base64 data URL (data:<media type>;base64,...)")
    return inline[1]


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


cdef list _tool_calls(object calls, str param, dict names):
    """Assistant tool calls as Ollama's ``[{"function": {"name", "arguments"}}]``
    (``rules.tool_arguments``); each call's id is remembered with its name, for
    the tool results."""
    cdef list out = []
    cdef object call, fn, name, call_id
    cdef Py_ssize_t j
    cdef str at
    if not isinstance(calls, list):
        raise _invalid(param, "must be an array")
    for j, call in enumerate(calls):
        at = f"{param}[{j}]"
        if not isinstance(call, dict) or call.get("type", "function") != "function":
            raise _invalid(at, "must be a function call")
        fn = call.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise _invalid(at + ".function.name", "is required")
        call_id = call.get("id")
        if isinstance(call_id, str) and call_id:
            names[call_id] = name
        out.append({"function": {"name": name,
                                 "arguments": tool_arguments(fn.get("arguments"), at + ".function.arguments")}})
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
    cdef object value, native
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
    value = max_tokens(body, None)
    if value is not None:
        options["num_predict"] = value
    value = stop_list(body.get("stop"), "stop")
    if value is not None:
        options["stop"] = value
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
    cdef object role, content, calls, call_id, name, fmt, n, effort
    cdef list tools
    cdef str param
    cdef Py_ssize_t i = 0
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidInput("Ollama gives one choice: 'n' must be 1", "n")
    for message in body["messages"]:
        role = message["role"]
        param = where(i, ".content")
        content = message.get("content")
        if role == "user":
            converted = _user_message(content, param)
        elif role == "assistant":
            converted = {"role": "assistant", "content": _text_of(content, param, "assistant")}
            calls = message.get("tool_calls")
            if calls is not None:
                calls = _tool_calls(calls, where(i, ".tool_calls"), names)
                if calls:
                    converted["tool_calls"] = calls
        elif role == "tool":
            call_id = message.get("tool_call_id")
            name = names.get(call_id) if isinstance(call_id, str) else None
            if name is None:
                raise _invalid(where(i, ".tool_call_id"),
                               "must be the id of a tool call in an earlier assistant message")
            converted = {"role": "tool", "content": _text_of(content, param, "tool"), "tool_name": name}
        elif role == "system" or role == "developer":
            converted = {"role": "system", "content": _text_of(content, param, role)}
        elif role == "function":
            name = message.get("name")
            if not isinstance(name, str) or not name:
                raise _invalid(where(i, ".name"), "is required")
            converted = {"role": "tool", "content": _text_of(content, param, "function"), "tool_name": name}
        else:
            raise _invalid(where(i, ".role"), f"{role!r} is not supported")
        messages.append(converted)
        i += 1
    out = {"model": model, "messages": messages, "stream": stream}
    tools = _tools(body)
    if tools:
        out["tools"] = tools
    fmt = _format(body.get("response_format"))
    if fmt is not None:
        out["format"] = fmt
    effort = body.get("reasoning_effort")
    if effort is not None:
        if not isinstance(effort, str) or effort not in _THINK:
            raise InvalidInput("'reasoning_effort' must be 'none', 'minimal', 'low', 'medium' or 'high'",
                               "reasoning_effort")
        out["think"] = _THINK[effort]
    options = _options(body)
    if options:
        out["options"] = options
    return out


# ------------------------------------------------------------------ answer: the decoder

cdef int _message(Sink sink, object message, int calls) except -1:
    """The events of one message object (a stream line's or a whole answer's):
    thinking, content, then each tool call. Returns the tool calls so far."""
    cdef object value, call, fn, name, args
    cdef str fragment
    if not isinstance(message, dict):
        return calls
    value = (<dict>message).get("thinking")
    if isinstance(value, str) and value:
        sink.reasoning(0, value)
    value = (<dict>message).get("content")
    if isinstance(value, str) and value:
        sink.text(0, value)
    value = (<dict>message).get("tool_calls")
    if isinstance(value, list):
        for call in <list>value:
            if not isinstance(call, dict):
                continue
            # Ollama gives each call whole, without an id: one start, one
            # fragment with all its arguments (none for {}: the encoder says "{}").
            fn = (<dict>call).get("function")
            name = None
            args = None
            if isinstance(fn, dict):
                name = (<dict>fn).get("name")
                args = (<dict>fn).get("arguments")
            sink.tool_start(0, calls, new_id("call_"), name if isinstance(name, str) else "", None)
            if isinstance(args, str):
                fragment = args if (<str>args).strip() else None
            elif args:
                fragment = _dumps(args).decode()
            else:
                fragment = None
            if fragment is not None:
                sink.tool_args(0, calls, fragment)
            calls += 1
    return calls


cdef int _done(Sink sink, dict obj, int calls) except -1:
    """The counts, the finish and the end of a ``done: true`` line or answer."""
    sink.usage(token_count(obj.get("prompt_eval_count")), token_count(obj.get("eval_count")), 0, 0, 0)
    sink.finish(0, finish_reason(_FINISH, obj.get("done_reason"), calls > 0), None)
    sink.end()
    return 0


cdef class OllamaDecoder:
    """Ollama ``/api/chat`` NDJSON lines in, ``events.Sink`` events out.

    The first line gives start(id); ``message.thinking`` is reasoning,
    ``message.content`` text, each of ``message.tool_calls`` (Ollama sends them
    whole) a tool_start with a new ``call_`` id and one tool_args fragment; the
    ``done: true`` line gives usage, finish and end. An ``{"error": ...}`` line
    (sent after HTTP 200) sets ``error``; a line that is not a JSON object, or
    too long, sets ``invalid``. Either stops decoding.
    """

    def __init__(self, Sink sink not None, object id=None):
        self._sink = sink
        self._lines = NDJSONDecoder()
        self._id = id
        self._started = False
        self._calls = 0
        self.done = False
        self.error = None
        self.invalid = None

    cpdef feed(self, bytes chunk):
        """Decode the lines ``chunk`` completes."""
        cdef list lines
        cdef bytes line
        if self.done or self.error is not None or self.invalid is not None:
            return
        try:
            lines = self._lines.feed(chunk)
        except SSEError as exc:
            self.invalid = str(exc)
            return
        for line in lines:
            if self._line(line):
                return

    cpdef close(self):
        """At EOF: decode a last line that had no newline (a cut one is invalid)."""
        cdef list lines
        cdef bytes line
        if self.done or self.error is not None or self.invalid is not None:
            return
        try:
            lines = self._lines.close()
        except SSEError as exc:
            self.invalid = str(exc)
            return
        for line in lines:
            if self._line(line):
                return

    cdef bint _line(self, bytes line) except -1:
        """Decode one line; True when the stream ended (done, error, invalid)."""
        cdef object obj, err
        try:
            obj = _loads(line)
        except _JSONDecodeError:
            self.invalid = "a line is not valid JSON"
            return True
        if not isinstance(obj, dict):
            self.invalid = "a line is not a JSON object"
            return True
        err = (<dict>obj).get("error")
        if err is not None:
            self.error = err
            return True
        if not self._started:
            self._started = True
            self._sink.start(self._id)
        self._calls = _message(self._sink, (<dict>obj).get("message"), self._calls)
        if (<dict>obj).get("done") is True:
            _done(self._sink, <dict>obj, self._calls)
            self.done = True
            return True
        return False


cpdef read_answer(dict answer, Sink sink, object id=None):
    """A whole ``/api/chat`` answer (``stream: false``) as the events of one answer:
    start(id), reasoning, text, tool calls, usage, finish, end."""
    if sink is None:
        raise TypeError("read_answer() takes a Sink, not None")
    sink.start(id)
    _done(sink, answer, _message(sink, answer.get("message"), 0))


cpdef dict usage_from(dict answer):
    """``prompt_eval_count`` / ``eval_count`` as OpenAI usage (missing -> 0).

    Ollama leaves out ``prompt_eval_count`` when the whole prompt was cached.
    """
    return make_usage(token_count(answer.get("prompt_eval_count")), token_count(answer.get("eval_count")))


# ------------------------------------------------------------------ answer: as OpenAI chat

cpdef dict chat_answer(dict answer, str id, long long created, str model):
    """An Ollama ``/api/chat`` answer (``stream: false``) as an OpenAI ``chat.completion``
    (``read_answer`` into ``chat.ChatAnswer``)."""
    cdef ChatAnswer encoder = ChatAnswer(created, model)
    read_answer(answer, encoder, id)
    return encoder.answer()


cdef class OllamaStream(Converter):
    """Ollama's NDJSON lines in, OpenAI ``chat.completion.chunk`` events out:
    an ``OllamaDecoder`` driving a ``chat.ChatChunks``, for ``pump``."""

    def __init__(self, str id, long long created, str model, bint include_usage):
        self.encoder = ChatChunks(created, model, include_usage)
        self.decoder = OllamaDecoder(self.encoder, id)

    cpdef bytes feed(self, bytes chunk):
        (<OllamaDecoder>self.decoder).feed(chunk)
        return self.encoder.take()

    cpdef bytes close(self):
        (<OllamaDecoder>self.decoder).close()
        return self.encoder.take()


# ------------------------------------------------------------------ embeddings

cpdef list embedding_inputs(dict body):
    """The texts of an OpenAI embeddings body; token arrays are an ``InvalidInput``
    (``rules.embedding_inputs``)."""
    return _embedding_inputs(body, "Ollama")


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
    tokens = token_count(answer.get("prompt_eval_count"))
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
