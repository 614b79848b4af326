# cython: language_level=3
"""Ollama's native API <-> OpenAI: chat requests, the answer decoder, embeddings.

``chat_request`` turns an OpenAI body into a ``POST /api/chat`` body.
``OllamaDecoder`` turns Ollama's NDJSON stream, and ``read_answer`` a whole
``/api/chat`` answer, into the events of ``events.Sink``, for any client
encoder (``chat``, ``completions``, ``messages``). ``embed_request``/``embed_answer``
are ``/api/embed``.
What maps to what, and what is dropped, is the conversion table in the README
("Ollama").
"""

import base64
import struct

import orjson

from .rules import InvalidInput
from .events cimport Decoder, Sink
from .rules cimport (content_parts, count as token_count, effort, embedding_inputs as _embedding_inputs,
                     finish_reason, function_name, functions, image_url, invalid, make_usage, new_id, options,
                     part_text, part_type, response_format, texts, tool_calls, tool_choice, tool_name, where)
from .sse cimport NDJSONDecoder
from .sse import SSEError

_dumps = orjson.dumps
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

cdef str _text_of(object content, Py_ssize_t i, str role):
    """The text of a system/developer/assistant/tool content (``rules.texts``),
    its parts joined with a newline."""
    return _JOIN.join(texts(content, where(i, ".content"), role))


cdef str _image_data(object image, str param):
    """The base64 data of a ``data:<type>;base64,<data>`` image URL.

    Ollama takes images only inline (base64 in ``images``): it does not fetch URLs.
    """
    cdef object parsed
    _, parsed = image_url(image, param)
    param += ".url"
    if parsed is None:
        raise InvalidInput(
            f"'{param}': Ollama takes images only inline; send a base64 data URL "
            "(data:image/png;base64,...), not a link", param)
    if not parsed[1]:
        raise invalid(param, "must be a base64 data URL (data:<media type>;base64,...)")
    return parsed[1]


cdef dict _user_message(object content, Py_ssize_t i):
    """A user message: its text parts joined into ``content``, its images in ``images``."""
    cdef list parts = [], images = []
    cdef object part, kind
    cdef str text
    cdef Py_ssize_t j = 0
    cdef dict out
    for part in content_parts(content, where(i, ".content")):
        kind = part_type(part)
        if kind == "text":
            text = part_text(part, "text", where(i, f".content[{j}]"))
            if text:
                parts.append(text)
        elif kind == "image_url":
            images.append(_image_data(part.get("image_url"), where(i, f".content[{j}].image_url")))
        else:
            raise invalid(where(i, f".content[{j}].type"), f"{kind!r} is not supported by Ollama (text and image_url only)")
        j += 1
    out = {"role": "user", "content": _JOIN.join(parts)}
    if images:
        out["images"] = images
    return out


cdef list _tools(dict body):
    """``tools`` (and legacy ``functions``) as Ollama tools, after ``tool_choice``:
    "none" sends none, a named function sends only that one; "required" cannot
    be forced on Ollama and acts as "auto"."""
    cdef list out = [{"type": "function", "function": fn} for fn in functions(body, "Ollama", True)]
    cdef object choice, name, param
    cdef dict tool
    if not out:
        return out
    choice, name, param = tool_choice(body)
    if choice == "none":
        return []
    if choice != "function":
        return out
    for tool in out:
        if tool["function"]["name"] == name:
            return [tool]
    raise InvalidInput(f"'{param}' names {name!r}, which is not in 'tools'", param)


# OpenAI's sampling fields as Ollama's options name them (rules.options).
_OPTIONS = ("temperature", "top_p", "top_k", "num_predict", "stop", "seed", "presence_penalty", "frequency_penalty")


cpdef dict chat_request(dict body, str model, bint stream):
    """An OpenAI Chat Completions body as an Ollama ``/api/chat`` body.

    ``stream`` is always set: Ollama streams when it is absent. Raises
    ``InvalidInput`` for what Ollama cannot express (see the README table).
    """
    cdef list messages = []
    cdef dict names = {}    # tool_call_id -> function name, for the tool results
    cdef dict out, message, converted, options_
    cdef object role, content, n, kind, schema, think
    cdef list tools, calls
    cdef Py_ssize_t i = 0
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidInput("Ollama gives one choice: 'n' must be 1", "n")
    for message in body["messages"]:
        role = message["role"]
        content = message.get("content")
        if role == "user":
            converted = _user_message(content, i)
        elif role == "assistant":
            converted = {"role": "assistant", "content": _text_of(content, i, "assistant")}
            calls = []
            for call, name, args in tool_calls(message.get("tool_calls"), i):
                if isinstance(call.get("id"), str) and call["id"]:
                    names[call["id"]] = name
                calls.append({"function": {"name": name, "arguments": args}})
            if calls:
                converted["tool_calls"] = calls
        elif role == "tool":
            converted = {"role": "tool", "content": _text_of(content, i, "tool"),
                         "tool_name": tool_name(names, message.get("tool_call_id"), i)}
        elif role == "system" or role == "developer":
            converted = {"role": "system", "content": _text_of(content, i, role)}
        elif role == "function":
            converted = {"role": "tool", "content": _text_of(content, i, "function"),
                         "tool_name": function_name(message, i)}
        else:
            raise invalid(where(i, ".role"), f"{role!r} is not supported")
        messages.append(converted)
        i += 1
    out = {"model": model, "messages": messages, "stream": stream}
    tools = _tools(body)
    if tools:
        out["tools"] = tools
    kind, schema = response_format(body)
    if kind == "json_object" or kind == "json_schema":
        # Ollama's format: a JSON schema, or "json" for any object
        out["format"] = schema if schema is not None else "json"
    think = effort(body, _THINK)
    if think is not None:
        out["think"] = think
    options_ = {}
    if isinstance(body.get("options"), dict):
        options_.update(body["options"])  # Ollama's own options (num_ctx, top_k, ...), as an extension
    options(body, options_, _OPTIONS)
    if options_:
        out["options"] = options_
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


cdef class OllamaDecoder(Decoder):
    """Ollama ``/api/chat`` NDJSON lines in, ``events.Sink`` events out.

    The first line gives start(id); ``message.thinking`` is reasoning,
    ``message.content`` text, each of ``message.tool_calls`` (Ollama sends them
    whole) a tool_start with a new ``call_`` id and one tool_args fragment; the
    ``done: true`` line gives usage, finish and end. An ``{"error": ...}`` line
    (sent after HTTP 200) sets ``error``; a line that is not a JSON object, or
    too long, sets ``invalid``. Either stops decoding.
    """

    def __init__(self, Sink sink not None, object id=None):
        Decoder.__init__(self, sink)
        self._lines = NDJSONDecoder()
        self._id = id

    cpdef feed(self, bytes chunk):
        """Decode the lines ``chunk`` completes."""
        self._read(chunk, False)

    cpdef close(self):
        """At EOF: decode a last line that had no newline (a cut one is invalid)."""
        self._read(None, True)

    cdef int _read(self, bytes chunk, bint eof) except -1:
        cdef list lines
        cdef bytes line
        if self._stopped():
            return 0
        try:
            lines = self._lines.close() if eof else self._lines.feed(chunk)
        except SSEError as exc:
            self.invalid = str(exc)
            return 0
        for line in lines:
            if self._line(line):
                break
        return 0

    cdef bint _line(self, bytes line) except -1:
        """Decode one line; True when the stream ended (done, error, invalid)."""
        cdef object obj, err
        obj = self._object(line, "a line")
        if obj is None:
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
