# cython: language_level=3
"""Google Gemini: chat requests, the answer decoder, embeddings.

``chat_request`` makes a ``generateContent`` body of an OpenAI one (with the
shared ``rules``). ``GeminiDecoder`` (a ``streamGenerateContent?alt=sse``
stream) and ``read_answer`` (a whole ``GenerateContentResponse``) turn
Gemini's answers into ``events``, for any client encoder (``chat``,
``completions``, ``messages``). What maps to what, and what is dropped, is the conversion table in the
README ("Gemini").
"""

import base64
import struct

import orjson

from .rules import InvalidInput
from .events cimport Decoder, Sink
from .rules cimport (add_turn, content_parts, count, data_url, effort, embedding_inputs as _embedding_inputs,
                     file_data, finish_reason, function_name, functions, image_url, invalid, is_link, make_usage, new_id,
                     options, part_text, part_type, response_format, texts, tool_arguments, tool_calls,
                     tool_choice, tool_name, where)
from .sse cimport Event, SSEDecoder

_dumps = orjson.dumps
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_b64encode = base64.b64encode

# ------------------------------------------------------------------ constants

cdef enum:
    _TEXT = 1           # a run of answer text parts
    _REASONING = 2      # a run of thought parts
    _MAX_CHOICES = 1 << 16

_EXTRA_CONTENT = "extra_content"
_GOOGLE = "google"
_THOUGHT_SIGNATURE = "thought_signature"

# Gemini finishReason -> OpenAI finish_reason; what is not here is "stop".
_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}

_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}

# OpenAI reasoning_effort -> Gemini thinkingBudget (tokens), as Google's own
# OpenAI compatibility layer maps them.
_THINKING_BUDGET = {"none": 0, "minimal": 1024, "low": 1024, "medium": 8192, "high": 24576}

# Gemini's Schema is an OpenAPI 3.0 subset: an unknown key is a 400
# ("Invalid JSON payload received. Unknown name ..."), so only these are kept.
_SCHEMA_KEYS = frozenset((
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
))
# The only formats Gemini accepts (others are a 400).
_SCHEMA_FORMATS = frozenset(("enum", "date-time", "int32", "int64", "float", "double"))

# File extension -> MIME type, for http(s) image URLs sent as fileData.
_IMAGE_TYPES = {
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp",
    "gif": "image/gif", "heic": "image/heic", "heif": "image/heif", "bmp": "image/bmp",
}
_DEFAULT_IMAGE_TYPE = "image/jpeg"
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}


cpdef str model_path(str model):
    """The resource name of a model: ``models/gemini-2.5-flash`` for
    ``gemini-2.5-flash`` or ``models/gemini-2.5-flash``; ``tunedModels/x`` stays."""
    if "/" in model:
        return model
    return "models/" + model


# ------------------------------------------------------------------ request

cdef list _text_parts(object content, Py_ssize_t i, str role):
    """Text parts of a system/developer/assistant content (``rules.texts``)."""
    return [{"text": text} for text in texts(content, where(i, ".content"), role)]


cdef str _image_type(str url):
    cdef str path = url.split("?", 1)[0].split("#", 1)[0]
    cdef str name = path.rsplit("/", 1)[-1]
    cdef str ext
    if "." not in name:
        return _DEFAULT_IMAGE_TYPE
    ext = name.rsplit(".", 1)[1].lower()
    return _IMAGE_TYPES.get(ext, _DEFAULT_IMAGE_TYPE)


cdef dict _inline(tuple parsed, str default_type):
    """(media type, data) of ``rules.data_url`` -> an inlineData part."""
    return {"inlineData": {"mimeType": parsed[0] or default_type, "data": parsed[1]}}


cdef dict _image_part(object image, Py_ssize_t i, Py_ssize_t j):
    cdef str url
    cdef object parsed
    url, parsed = image_url(image, where(i, f".content[{j}].image_url"))
    if parsed is not None:
        return _inline(parsed, _DEFAULT_IMAGE_TYPE)
    if is_link(url, True):
        # Gemini fetches the file itself; the type comes from the extension.
        return {"fileData": {"mimeType": _image_type(url), "fileUri": url}}
    raise invalid(where(i, f".content[{j}].image_url.url"), "must be an http(s) URL or a base64 data URL")


cdef dict _audio_part(object audio, Py_ssize_t i, Py_ssize_t j):
    cdef str param = where(i, f".content[{j}].input_audio")
    if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
        raise invalid(param + ".data", "must be a base64 string")
    fmt = audio.get("format")
    if not isinstance(fmt, str) or not fmt:
        raise invalid(param + ".format", "must be a string")
    return {"inlineData": {"mimeType": _AUDIO_TYPES.get(fmt, "audio/" + fmt), "data": audio["data"]}}


cdef dict _file_part(object file, Py_ssize_t i, Py_ssize_t j):
    return _inline(file_data(file, where(i, f".content[{j}].file"), "Gemini"), "application/pdf")


cdef list _user_parts(object content, Py_ssize_t i):
    cdef list parts = []
    cdef object part, kind
    cdef str text
    cdef Py_ssize_t j = 0
    for part in content_parts(content, where(i, ".content")):
        kind = part_type(part)
        if kind == "text":
            text = part_text(part, "text", where(i, f".content[{j}]"))
            if text:
                parts.append({"text": text})
        elif kind == "image_url":
            parts.append(_image_part(part.get("image_url"), i, j))
        elif kind == "input_audio":
            parts.append(_audio_part(part.get("input_audio"), i, j))
        elif kind == "file":
            parts.append(_file_part(part.get("file"), i, j))
        else:
            raise invalid(where(i, f".content[{j}].type"), f"{kind!r} is not supported for Gemini")
        j += 1
    return parts


cdef list _assistant_parts(dict message, Py_ssize_t i, dict call_names):
    cdef list parts = _text_parts(message.get("content"), i, "assistant")
    cdef object call, extra, google, signature, legacy
    cdef str name
    cdef dict part, args
    for call, name, args in tool_calls(message.get("tool_calls"), i):
        part = {"functionCall": {"name": name, "args": args}}
        # Gemini 3 refuses a function call of its own sent back without the
        # signature it came with (carried in OpenAI's extra_content).
        extra = call.get("extra_content")
        if isinstance(extra, dict):
            google = extra.get(_GOOGLE)
            if isinstance(google, dict):
                signature = google.get(_THOUGHT_SIGNATURE)
                if isinstance(signature, str) and signature:
                    part["thoughtSignature"] = signature
        parts.append(part)
        if isinstance(call.get("id"), str):
            call_names[call["id"]] = name
    legacy = message.get("function_call")
    if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
        parts.append({"functionCall": {
            "name": legacy["name"],
            "args": tool_arguments(legacy.get("arguments"), where(i, ".function_call.arguments")),
        }})
    return parts


cdef dict _function_response(str name, object content, Py_ssize_t i):
    """A tool result: the JSON object it holds, else ``{"content": text}``."""
    cdef str text = "".join(texts(content, where(i, ".content"), "tool"))
    cdef object parsed
    if text.lstrip()[:1] == "{":
        try:
            parsed = _loads(text)
        except _JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return {"functionResponse": {"name": name, "response": parsed}}
    return {"functionResponse": {"name": name, "response": {"content": text}}}


cdef object _resolve_ref(object ref, dict root, tuple seen):
    cdef str name
    cdef object defs
    if not isinstance(ref, str):
        raise InvalidInput("a schema '$ref' must be a string", None)
    for prefix in ("#/$defs/", "#/definitions/"):
        if ref.startswith(prefix):
            name = ref[len(prefix):]
            defs = root.get(prefix[2:-1])
            if isinstance(defs, dict) and isinstance(defs.get(name), dict):
                if ref in seen:
                    raise InvalidInput(f"recursive schemas ('$ref': {ref!r}) are not supported by Gemini", None)
                return defs[name]
    raise InvalidInput(f"schema '$ref' {ref!r} is not supported by Gemini (only local #/$defs refs)", None)


cdef dict _schema(object node, dict root, tuple seen):
    """A JSON Schema as Gemini's Schema: local refs inlined, unknown keys dropped,
    ``type: [t, "null"]`` and ``anyOf: [..., {"type": "null"}]`` made ``nullable``."""
    cdef dict out = {}
    cdef dict merged
    cdef object key, value, kind, item, ref
    cdef list kinds, options
    if not isinstance(node, dict):
        return out
    ref = node.get("$ref")
    if ref is not None:
        merged = dict(_resolve_ref(ref, root, seen))
        for key, value in node.items():
            if key != "$ref":
                merged[key] = value
        return _schema(merged, root, seen + (ref,))
    all_of = node.get("allOf")
    if isinstance(all_of, list) and all_of:
        merged = {k: v for k, v in node.items() if k != "allOf"}
        for item in all_of:
            item = _schema(item, root, seen)
            for key, value in item.items():
                if key == "properties" and isinstance(merged.get(key), dict):
                    merged[key] = {**merged[key], **value}
                elif key == "required" and isinstance(merged.get(key), list):
                    merged[key] = merged[key] + [r for r in value if r not in merged[key]]
                else:
                    merged.setdefault(key, value)
        return _schema(merged, root, seen)
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            kinds = [k for k in value if k != "null"]
            if len(kinds) < len(value):
                out["nullable"] = True
            if len(kinds) == 1:
                out["type"] = kinds[0]
            elif kinds:
                out["anyOf"] = [{"type": k} for k in kinds]
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {name: _schema(sub, root, seen) for name, sub in value.items()}
        elif key == "items":
            if isinstance(value, dict):
                out["items"] = _schema(value, root, seen)
        elif key == "anyOf" or key == "oneOf":
            if not isinstance(value, list):
                continue
            options = []
            for item in value:
                if isinstance(item, dict) and item.get("type") == "null" and len(item) == 1:
                    out["nullable"] = True
                else:
                    options.append(_schema(item, root, seen))
            if len(options) == 1:
                for k, v in options[0].items():
                    out.setdefault(k, v)
            elif options:
                out["anyOf"] = options
        elif key == "const":
            if isinstance(value, str):
                out["enum"] = [value]
                out.setdefault("type", "string")
        elif key == "format":
            if value in _SCHEMA_FORMATS:
                out["format"] = value
        elif key in _SCHEMA_KEYS:
            out.setdefault(key, value)
    if isinstance(out.get("required"), list) and isinstance(out.get("properties"), dict):
        out["required"] = [r for r in out["required"] if r in out["properties"]]
    return out


cpdef dict gemini_schema(object schema):
    """A JSON Schema (tool parameters, response_format) as Gemini's Schema subset.

    gemini_schema({"type": "object", "additionalProperties": False,
                   "properties": {"a": {"type": ["string", "null"]}}})
    # {"type": "object", "properties": {"a": {"type": "string", "nullable": True}}}
    """
    if not isinstance(schema, dict):
        return {}
    return _schema(schema, schema, ())


cdef dict _declaration(dict fn):
    cdef dict decl = {"name": fn["name"]}
    cdef object params, props
    if "description" in fn:
        decl["description"] = fn["description"]
    params = fn.get("parameters")
    if params is not None:
        params = gemini_schema(params)
        props = params.get("properties")
        # Gemini rejects an OBJECT schema without properties ("should be
        # non-empty for OBJECT type"): a function without arguments has none.
        if params and not (params.get("type") == "object" and not props):
            decl["parameters"] = params
    return decl


# OpenAI's sampling fields as Gemini names them (rules.options).
_OPTIONS = ("temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "seed",
            "presencePenalty", "frequencyPenalty")


cdef void _generation_config(dict body, dict out):
    cdef dict config = {}
    cdef object value, kind, schema
    options(body, config, _OPTIONS)
    value = body.get("n")
    if value is not None:
        config["candidateCount"] = value
    kind, schema = response_format(body)
    if kind == "json_object" or kind == "json_schema":
        config["responseMimeType"] = "application/json"
        if schema is not None:
            config["responseSchema"] = gemini_schema(schema)
    value = effort(body, _THINKING_BUDGET)
    if value is not None:
        config["thinkingConfig"] = {"thinkingBudget": value}
    if config:
        out["generationConfig"] = config


cpdef dict chat_request(dict body):
    """An OpenAI Chat Completions body as a Gemini ``generateContent`` body.

    Raises ``InvalidInput`` for what Gemini cannot express (see the README table).
    """
    cdef list contents = []
    cdef list system = []
    cdef dict call_names = {}   # tool_call_id -> function name, for the tool results
    cdef dict out = {}
    cdef dict message
    cdef object role, choice, name
    cdef list decls
    cdef Py_ssize_t i = 0
    for message in body["messages"]:
        role = message["role"]
        if role == "user":
            add_turn(contents, "user", "parts", _user_parts(message.get("content"), i))
        elif role == "assistant":
            add_turn(contents, "model", "parts", _assistant_parts(message, i, call_names))
        elif role == "tool":
            add_turn(contents, "user", "parts", [_function_response(
                tool_name(call_names, message.get("tool_call_id"), i), message.get("content"), i)])
        elif role == "system" or role == "developer":
            system.extend(_text_parts(message.get("content"), i, role))
        elif role == "function":
            add_turn(contents, "user", "parts", [_function_response(
                function_name(message, i), message.get("content"), i)])
        else:
            raise invalid(where(i, ".role"), f"{role!r} is not supported")
        i += 1
    out["contents"] = contents
    if system:
        out["systemInstruction"] = {"parts": system}
    decls = [_declaration(fn) for fn in functions(body, "Gemini", True)]
    if decls:
        out["tools"] = [{"functionDeclarations": decls}]
        choice, name, _ = tool_choice(body)
        if name is not None:
            out["toolConfig"] = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
        elif choice is not None:
            out["toolConfig"] = {"functionCallingConfig": {"mode": _TOOL_MODES[choice]}}
    _generation_config(body, out)
    return out


# ------------------------------------------------------------------ answer

cdef struct _Tokens:
    long long input         # uncached prompt tokens
    long long output        # candidates + thoughts
    long long cached
    long long thoughts


cdef _Tokens _tokens(dict meta):
    """promptTokenCount already includes cachedContentTokenCount; thoughts are
    completion tokens (also reasoning); tool-use prompt tokens are prompt tokens,
    so the total is Gemini's totalTokenCount. What is not an integer is 0."""
    cdef _Tokens t
    t.cached = count(meta.get("cachedContentTokenCount"))
    t.thoughts = count(meta.get("thoughtsTokenCount"))
    t.input = count(meta.get("promptTokenCount")) + count(meta.get("toolUsePromptTokenCount")) - t.cached
    t.output = count(meta.get("candidatesTokenCount")) + t.thoughts
    return t


cpdef dict usage_from(object meta):
    """Gemini ``usageMetadata`` as OpenAI usage (``make_usage``), counted as the
    decoder's usage events are; zeros when ``meta`` is not a dict."""
    cdef _Tokens t
    if not isinstance(meta, dict):
        return make_usage(0, 0)
    t = _tokens(<dict>meta)
    return make_usage(t.input, t.output, t.cached, 0, t.thoughts)


cdef int _usage(Sink sink, dict meta) except -1:
    """``usageMetadata`` as a usage event."""
    cdef _Tokens t = _tokens(meta)
    sink.usage(t.input, t.output, t.cached, 0, t.thoughts)
    return 0


cpdef object block_reason(dict answer):
    """Why Gemini blocked the prompt, when it answered with no candidate; else None.

    block_reason({"promptFeedback": {"blockReason": "SAFETY"}}) == "SAFETY"
    """
    cdef object feedback, reason, detail
    if answer.get("candidates"):
        return None
    feedback = answer.get("promptFeedback")
    if not isinstance(feedback, dict):
        return None
    reason = feedback.get("blockReason")
    if not isinstance(reason, str) or not reason:
        return None
    detail = feedback.get("blockReasonMessage")
    if isinstance(detail, str) and detail:
        return f"{reason}: {detail}"
    return reason


cdef inline object _answer_id(dict obj, object id):
    # the id given, else Gemini's responseId, else None
    cdef object rid
    if id is not None:
        return id
    rid = obj.get("responseId")
    return rid if isinstance(rid, str) and rid else None


cdef inline int _choice_index(object index, Py_ssize_t pos) noexcept:
    # the candidate's index (proto3 leaves 0 out), else its position
    if type(index) is int and 0 <= <object>index < _MAX_CHOICES:
        return <int>index
    return <int>pos


cdef class _Choice:
    cdef bint finished
    cdef int calls         # tool calls started so far: the next one's index


cdef int _flush(Sink sink, int choice, int kind, str first, list more) except -1:
    # one text or reasoning event for a run of parts of one kind
    cdef str text = first if more is None else "".join(more)
    if kind == _TEXT:
        sink.text(choice, text)
    else:
        sink.reasoning(choice, text)
    return 0


cdef int _parts(Sink sink, int i, object parts, _Choice choice) except -1:
    """A candidate's parts as events, in order. Neighbouring parts of one kind
    (text, thought text) are one event; a functionCall is a tool_start and,
    unless its args are empty, one tool_args fragment with their JSON."""
    cdef object part, text, call, args, call_id, name, signature, extra
    cdef int kind = 0, this
    cdef str first = None
    cdef list more = None
    if not isinstance(parts, list):
        return 0
    for part in <list>parts:
        if not isinstance(part, dict):
            continue
        text = (<dict>part).get("text")
        this = _REASONING if (<dict>part).get("thought") is True else _TEXT
        if isinstance(text, str) and text:
            if kind == this:
                if more is None:
                    more = [first, text]
                else:
                    more.append(text)
            else:
                if kind:
                    _flush(sink, i, kind, first, more)
                kind = this
                first = <str>text
                more = None
        if this == _REASONING:
            continue   # a thought part is reasoning only
        call = (<dict>part).get("functionCall")
        if isinstance(call, dict):
            if kind:
                _flush(sink, i, kind, first, more)
                kind = 0
            call_id = (<dict>call).get("id")
            name = (<dict>call).get("name")
            signature = (<dict>part).get("thoughtSignature")
            extra = None
            if isinstance(signature, str) and signature:
                # Gemini 3 wants it back on the call (chat_request puts it there)
                extra = {_EXTRA_CONTENT: {_GOOGLE: {_THOUGHT_SIGNATURE: signature}}}
            sink.tool_start(i, choice.calls,
                            call_id if isinstance(call_id, str) and call_id else new_id("call_"),
                            name if isinstance(name, str) else "", extra)
            args = (<dict>call).get("args")
            if args:
                sink.tool_args(i, choice.calls, _dumps(args).decode())
            choice.calls += 1
    if kind:
        _flush(sink, i, kind, first, more)
    return 0


cpdef read_answer(dict answer, Sink sink, object id=None):
    """A whole ``GenerateContentResponse`` as events on ``sink``:

        read_answer(answer, ChatAnswer(created, model), "chatcmpl-1")

    start (``id``, else Gemini's ``responseId``), usage (zeros without
    ``usageMetadata``), each candidate's parts and its finish (a candidate
    without ``finishReason`` is ``stop``), end. No candidate but a
    ``promptFeedback.blockReason``: a ``content_filter`` finish of choice 0.
    """
    cdef object candidates = answer.get("candidates")
    cdef object candidate, meta, content
    cdef _Choice choice
    cdef set seen = set()
    cdef Py_ssize_t pos = 0
    cdef int i
    sink.start(_answer_id(answer, id))
    meta = answer.get("usageMetadata")
    _usage(sink, meta if isinstance(meta, dict) else {})
    if isinstance(candidates, list):
        for candidate in <list>candidates:
            if not isinstance(candidate, dict):
                continue
            i = _choice_index((<dict>candidate).get("index"), pos)
            pos += 1
            if i in seen:
                continue   # a repeated index: the first candidate holds it
            seen.add(i)
            choice = _Choice()
            content = (<dict>candidate).get("content")
            if isinstance(content, dict):
                _parts(sink, i, (<dict>content).get("parts"), choice)
            sink.finish(i, finish_reason(_FINISH, (<dict>candidate).get("finishReason"), choice.calls > 0), None)
    if not seen and block_reason(answer) is not None:
        sink.finish(0, "content_filter", None)
        seen.add(0)
    if 0 in seen:
        sink.end()   # an answer without candidates (and no block) has no choice to end


# ------------------------------------------------------------------ stream

cdef class GeminiDecoder(Decoder):
    """``streamGenerateContent?alt=sse`` bytes in, events on ``sink`` out.

        decoder = GeminiDecoder(sink)        # or GeminiDecoder(sink, "chatcmpl-1")
        decoder.feed(chunk); ...; decoder.close()

    start comes with the first event (``id`` if given, else Gemini's
    ``responseId``); each event's ``usageMetadata`` is a usage event, then each
    candidate's parts (see ``read_answer``) and its ``finishReason``: exactly
    one finish per choice, what a choice sends after it is dropped. Gemini has
    no end marker: ``close()`` calls end() when every choice that came has
    finished (choice 0 among them). An ``{"error": ...}`` event sets ``error``;
    ``promptFeedback.blockReason`` with no candidate sets ``blocked`` and
    ``error`` (code ``content_filter``); bytes that are not SSE of JSON objects
    set ``invalid``. Each of these stops the decoding.
    """

    def __init__(self, Sink sink, object id=None):
        Decoder.__init__(self, sink)
        self._sse = SSEDecoder()
        self._id = id
        self._choices = {}

    cpdef feed(self, bytes chunk):
        """Decodes the whole events in ``chunk`` (and before it), calling the sink."""
        cdef list events = self._events(chunk)
        cdef Event event
        if events is not None:
            for event in events:
                if self._event(event.data):
                    break

    cdef bint _event(self, bytes data) except -1:
        """One event; True when it stops the decoding."""
        cdef object obj, candidates, candidate, meta, reason
        cdef Py_ssize_t pos
        obj = self._object(data, "an event")
        if obj is None:
            return True
        if (<dict>obj).get("error") is not None:
            self.error = (<dict>obj)["error"]
            return True
        if not self._started:
            self._started = True
            self._sink.start(_answer_id(<dict>obj, self._id))
        meta = (<dict>obj).get("usageMetadata")
        if isinstance(meta, dict):
            _usage(self._sink, <dict>meta)
        candidates = (<dict>obj).get("candidates")
        if isinstance(candidates, list) and candidates:
            pos = 0
            for candidate in <list>candidates:
                if isinstance(candidate, dict):
                    self._candidate(<dict>candidate, pos)
                pos += 1
            return False
        reason = block_reason(<dict>obj)
        if reason is not None:
            self.blocked = reason
            self.error = {"message": f"Gemini blocked the prompt ({reason})",
                          "type": "invalid_request_error", "code": "content_filter"}
            return True
        return False

    cdef int _candidate(self, dict candidate, Py_ssize_t pos) except -1:
        cdef int i = _choice_index(candidate.get("index"), pos)
        cdef _Choice choice = self._choices.get(i)
        cdef object content, reason
        if choice is None:
            choice = _Choice()
            self._choices[i] = choice
        elif choice.finished:
            return 0   # one finish per choice: what follows it (a repeat) is dropped
        content = candidate.get("content")
        if isinstance(content, dict):
            _parts(self._sink, i, (<dict>content).get("parts"), choice)
        reason = candidate.get("finishReason")
        if isinstance(reason, str) and reason:
            choice.finished = True
            self._sink.finish(i, finish_reason(_FINISH, reason, choice.calls > 0), None)
        return 0

    cpdef close(self):
        """At EOF: notes a stream cut inside an event (``invalid``); calls end()
        and sets ``done`` when every choice finished."""
        cdef _Choice choice
        if not self._close_sse() or self._stopped():
            return None
        choice = self._choices.get(0)
        if choice is None or not choice.finished:
            return None
        for choice in self._choices.values():
            if not choice.finished:
                return None
        self.done = True
        self._sink.end()
        return None


# ------------------------------------------------------------------ embeddings

cpdef list embedding_inputs(dict body):
    """The texts of an OpenAI embeddings body; token arrays are an ``InvalidInput``
    (``rules.embedding_inputs``)."""
    return _embedding_inputs(body, "Gemini")


cpdef dict embed_request(list texts, str model, object dimensions):
    """A ``batchEmbedContents`` body: one request per text, ``model`` as ``models/<name>``."""
    cdef list requests = []
    cdef dict request
    cdef str text
    for text in texts:
        request = {"model": model, "content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            request["outputDimensionality"] = dimensions
        requests.append(request)
    return {"requests": requests}


cpdef long long estimate_tokens(list texts):
    """Gemini's batch answer has no token count: about 4 characters a token, at least 1 each."""
    cdef long long total = 0
    cdef str text
    for text in texts:
        total += max(1, (len(text) + 3) // 4)
    return total


cpdef object embed_answer(dict answer, Py_ssize_t count, str model, bint as_base64, long long tokens):
    """A ``batchEmbedContents`` answer as an OpenAI embeddings list, or None when it
    does not hold ``count`` embeddings. base64: little-endian float32, as OpenAI does."""
    cdef object embeddings = answer.get("embeddings")
    cdef list data = []
    cdef object item, values
    cdef Py_ssize_t i
    if not isinstance(embeddings, list) or len(embeddings) != count:
        return None
    for i in range(count):
        item = embeddings[i]
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(values, list):
            return None
        if as_base64:
            values = _b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
        data.append({"object": "embedding", "index": i, "embedding": values})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
