# cython: language_level=3
"""Google Gemini <-> OpenAI: chat requests and answers, the ``alt=sse`` stream, embeddings.

Requests go out as ``generateContent`` bodies, answers and stream events come
back as OpenAI ``chat.completion`` objects and chunks. ``GeminiStream`` is the
push converter ``providers.base.pump`` drives. What maps to what, and what is
dropped, is the conversion table in the README ("Gemini").
"""

import base64
import os
import struct

import orjson

from .convert import DONE_EVENT, InvalidInput
from .convert cimport chunk_event, make_usage, usage_event
from .sse cimport Event, SSEDecoder
from .sse import SSEError

_dumps = orjson.dumps
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_b64encode = base64.b64encode
_urandom = os.urandom

# ------------------------------------------------------------------ constants

_ROLE_DELTA = {"role": "assistant", "content": ""}

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


cdef inline str _new_call_id():
    return "call_" + _urandom(12).hex()


cpdef str model_path(str model):
    """The resource name of a model: ``models/gemini-2.5-flash`` for
    ``gemini-2.5-flash`` or ``models/gemini-2.5-flash``; ``tunedModels/x`` stays."""
    if "/" in model:
        return model
    return "models/" + model


# ------------------------------------------------------------------ request

cdef str _where(int i, str rest):
    return f"messages[{i}]{rest}"


cdef object _invalid(str param, str what):
    """InvalidInput("'<param>' <what>", param), for ``raise``."""
    return InvalidInput(f"'{param}' {what}", param)


cdef list _text_only(object content, int i, str what):
    """Text parts of a system/developer/assistant content (a string or text parts)."""
    cdef list parts = []
    cdef object part, text, kind
    cdef Py_ssize_t j
    if content is None:
        return parts
    if isinstance(content, str):
        if content:
            parts.append({"text": content})
        return parts
    if not isinstance(content, list):
        raise _invalid(_where(i, ".content"), "must be a string or an array of parts")
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" or kind == "refusal":
            text = part.get(kind)
            if not isinstance(text, str):
                raise _invalid(_where(i, f".content[{j}].{kind}"), "must be a string")
            if text:
                parts.append({"text": text})
        else:
            raise _invalid(_where(i, f".content[{j}]"), f"must be a text part: {what} messages take only text")
    return parts


cdef str _image_type(str url):
    cdef str path = url.split("?", 1)[0].split("#", 1)[0]
    cdef str name = path.rsplit("/", 1)[-1]
    cdef str ext
    if "." not in name:
        return _DEFAULT_IMAGE_TYPE
    ext = name.rsplit(".", 1)[1].lower()
    return _IMAGE_TYPES.get(ext, _DEFAULT_IMAGE_TYPE)


cdef dict _data_url(str url, str param, str default_type):
    """``data:<type>;base64,<data>`` -> an inlineData part."""
    cdef str head, data, mime
    head, sep, data = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        raise InvalidInput(f"'{param}' must be a base64 data URL (data:<type>;base64,...)", param)
    mime = head[:-7] or default_type
    return {"inlineData": {"mimeType": mime, "data": data}}


cdef dict _image_part(object image, int i, Py_ssize_t j):
    cdef str param = _where(i, f".content[{j}].image_url.url")
    cdef object url = image.get("url") if isinstance(image, dict) else image
    cdef str lower
    if not isinstance(url, str) or not url:
        raise _invalid(param, "must be a string")
    if url.startswith("data:"):
        return _data_url(url, param, _DEFAULT_IMAGE_TYPE)
    lower = url[:8].lower()
    if lower.startswith("https://") or lower.startswith("http://") or lower.startswith("gs://"):
        # Gemini fetches the file itself; the type comes from the extension.
        return {"fileData": {"mimeType": _image_type(url), "fileUri": url}}
    raise _invalid(param, "must be an http(s) URL or a base64 data URL")


cdef dict _audio_part(object audio, int i, Py_ssize_t j):
    cdef str param = _where(i, f".content[{j}].input_audio")
    if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
        raise _invalid(param + ".data", "must be a base64 string")
    fmt = audio.get("format")
    if not isinstance(fmt, str) or not fmt:
        raise _invalid(param + ".format", "must be a string")
    return {"inlineData": {"mimeType": _AUDIO_TYPES.get(fmt, "audio/" + fmt), "data": audio["data"]}}


cdef dict _file_part(object file, int i, Py_ssize_t j):
    cdef str param = _where(i, f".content[{j}].file")
    cdef object data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data, str) or not data:
        raise InvalidInput(f"'{param}': Gemini needs the file inline as 'file_data' (a base64 data URL); "
                           "'file_id' is not supported", param)
    if data.startswith("data:"):
        return _data_url(data, param, "application/pdf")
    return {"inlineData": {"mimeType": "application/pdf", "data": data}}


cdef list _user_parts(object content, int i):
    cdef list parts = []
    cdef object part, kind, text
    cdef Py_ssize_t j
    if content is None:
        return parts
    if isinstance(content, str):
        if content:
            parts.append({"text": content})
        return parts
    if not isinstance(content, list):
        raise _invalid(_where(i, ".content"), "must be a string or an array of parts")
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise _invalid(_where(i, f".content[{j}].text"), "must be a string")
            if text:
                parts.append({"text": text})
        elif kind == "image_url":
            parts.append(_image_part(part.get("image_url"), i, j))
        elif kind == "input_audio":
            parts.append(_audio_part(part.get("input_audio"), i, j))
        elif kind == "file":
            parts.append(_file_part(part.get("file"), i, j))
        else:
            raise _invalid(_where(i, f".content[{j}].type"), f"{kind!r} is not supported for Gemini")
    return parts


cdef dict _arguments(object raw, str param):
    """OpenAI arguments (a JSON text, usually) -> Gemini args (an object)."""
    cdef object args
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        raise InvalidInput(f"'{param}' must be a JSON string", param)
    if not raw.strip():
        return {}
    try:
        args = _loads(raw)
    except _JSONDecodeError:
        raise InvalidInput(f"'{param}' is not valid JSON", param) from None
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise InvalidInput(f"'{param}' must be a JSON object for Gemini", param)
    return args


cdef list _assistant_parts(dict message, int i, dict call_names):
    cdef list parts = _text_only(message.get("content"), i, "assistant")
    cdef object calls = message.get("tool_calls")
    cdef object call, fn, name, extra, google, signature, legacy
    cdef dict part
    cdef Py_ssize_t j
    if calls is not None:
        if not isinstance(calls, list):
            raise _invalid(_where(i, ".tool_calls"), "must be an array")
        for j, call in enumerate(calls):
            if not isinstance(call, dict) or call.get("type", "function") != "function":
                raise _invalid(_where(i, f".tool_calls[{j}]"), "must be a function tool call")
            fn = call.get("function")
            name = fn.get("name") if isinstance(fn, dict) else None
            if not isinstance(name, str) or not name:
                raise _invalid(_where(i, f".tool_calls[{j}].function.name"), "is required")
            part = {"functionCall": {
                "name": name,
                "args": _arguments(fn.get("arguments"), _where(i, f".tool_calls[{j}].function.arguments")),
            }}
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
            "args": _arguments(legacy.get("arguments"), _where(i, ".function_call.arguments")),
        }})
    return parts


cdef dict _function_response(str name, object content, int i):
    """A tool result: the JSON object it holds, else ``{"content": text}``."""
    cdef str text
    cdef object parsed
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "".join([p["text"] for p in _text_only(content, i, "tool")])
    elif content is None:
        text = ""
    else:
        raise _invalid(_where(i, ".content"), "must be a string or an array of text parts")
    if text.lstrip()[:1] == "{":
        try:
            parsed = _loads(text)
        except _JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return {"functionResponse": {"name": name, "response": parsed}}
    return {"functionResponse": {"name": name, "response": {"content": text}}}


cdef inline void _add_turn(list contents, str role, list parts):
    # Gemini wants user and model turns to alternate: same-role neighbours merge.
    cdef dict last
    if not parts:
        return
    if contents:
        last = contents[-1]
        if last["role"] == role:
            last["parts"].extend(parts)
            return
    contents.append({"role": role, "parts": parts})


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


cdef dict _declaration(object fn, str param):
    cdef dict decl
    cdef object name, params, props
    if not isinstance(fn, dict):
        raise InvalidInput(f"'{param}' must be an object", param)
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"'{param}.name' is required", param + ".name")
    decl = {"name": name}
    if isinstance(fn.get("description"), str):
        decl["description"] = fn["description"]
    params = fn.get("parameters")
    if isinstance(params, dict):
        params = gemini_schema(params)
        props = params.get("properties")
        # Gemini rejects an OBJECT schema without properties ("should be
        # non-empty for OBJECT type"): a function without arguments has none.
        if params and not (params.get("type") == "object" and not props):
            decl["parameters"] = params
    return decl


cdef list _declarations(dict body):
    cdef list decls = []
    cdef object tools = body.get("tools")
    cdef object tool, legacy
    cdef Py_ssize_t j
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidInput("'tools' must be an array", "tools")
        for j, tool in enumerate(tools):
            if not isinstance(tool, dict) or tool.get("type", "function") != "function":
                raise InvalidInput(f"'tools[{j}]': only function tools are supported for Gemini", f"tools[{j}]")
            decls.append(_declaration(tool.get("function"), f"tools[{j}].function"))
    legacy = body.get("functions")
    if isinstance(legacy, list):
        for j, tool in enumerate(legacy):
            decls.append(_declaration(tool, f"functions[{j}]"))
    return decls


cdef dict _calling_config(object choice, str param):
    cdef object fn, name, mode
    if isinstance(choice, str):
        mode = _TOOL_MODES.get(choice)
        if mode is None:
            raise InvalidInput(f"'{param}' must be 'auto', 'none', 'required' or a function", param)
        return {"mode": mode}
    if isinstance(choice, dict):
        fn = choice.get("function") if "function" in choice else choice
        name = fn.get("name") if isinstance(fn, dict) else None
        if isinstance(name, str) and name:
            return {"mode": "ANY", "allowedFunctionNames": [name]}
    raise InvalidInput(f"'{param}' must be 'auto', 'none', 'required' or a function", param)


cdef void _generation_config(dict body, dict out):
    cdef dict config = {}
    cdef object value, item, fmt, kind, spec, effort
    value = body.get("temperature")
    if value is not None:
        config["temperature"] = value
    value = body.get("top_p")
    if value is not None:
        config["topP"] = value
    value = body.get("top_k")
    if value is not None:
        config["topK"] = value
    value = body.get("max_completion_tokens")
    if value is None:
        value = body.get("max_tokens")
    if value is not None:
        config["maxOutputTokens"] = value
    value = body.get("stop")
    if isinstance(value, str):
        config["stopSequences"] = [value]
    elif isinstance(value, list) and value:
        for item in value:
            if not isinstance(item, str):
                raise InvalidInput("'stop' must be a string or an array of strings", "stop")
        config["stopSequences"] = value
    value = body.get("n")
    if value is not None:
        config["candidateCount"] = value
    value = body.get("seed")
    if value is not None:
        config["seed"] = value
    value = body.get("presence_penalty")
    if value is not None:
        config["presencePenalty"] = value
    value = body.get("frequency_penalty")
    if value is not None:
        config["frequencyPenalty"] = value
    fmt = body.get("response_format")
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind == "json_object":
            config["responseMimeType"] = "application/json"
        elif kind == "json_schema":
            config["responseMimeType"] = "application/json"
            spec = fmt.get("json_schema")
            if isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
                config["responseSchema"] = gemini_schema(spec["schema"])
        elif kind != "text":
            raise InvalidInput("'response_format.type' must be 'text', 'json_object' or 'json_schema'",
                               "response_format")
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in _THINKING_BUDGET:
            raise InvalidInput("'reasoning_effort' must be 'none', 'minimal', 'low', 'medium' or 'high'",
                               "reasoning_effort")
        config["thinkingConfig"] = {"thinkingBudget": _THINKING_BUDGET[effort]}
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
    cdef object role, call_id, name, choice
    cdef list decls
    cdef int i = 0
    for message in body["messages"]:
        role = message["role"]
        if role == "user":
            _add_turn(contents, "user", _user_parts(message.get("content"), i))
        elif role == "assistant":
            _add_turn(contents, "model", _assistant_parts(message, i, call_names))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            name = call_names.get(call_id) if isinstance(call_id, str) else None
            if name is None:
                raise _invalid(_where(i, ".tool_call_id"), "must be the id of a tool call in an earlier assistant message")
            _add_turn(contents, "user", [_function_response(name, message.get("content"), i)])
        elif role == "system" or role == "developer":
            system.extend(_text_only(message.get("content"), i, role))
        elif role == "function":
            name = message.get("name")
            if not isinstance(name, str) or not name:
                raise _invalid(_where(i, ".name"), "is required")
            _add_turn(contents, "user", [_function_response(name, message.get("content"), i)])
        else:
            raise _invalid(_where(i, ".role"), f"{role!r} is not supported")
        i += 1
    out["contents"] = contents
    if system:
        out["systemInstruction"] = {"parts": system}
    decls = _declarations(body)
    if decls:
        out["tools"] = [{"functionDeclarations": decls}]
        choice = body.get("tool_choice")
        if choice is not None:
            out["toolConfig"] = {"functionCallingConfig": _calling_config(choice, "tool_choice")}
        elif body.get("function_call") is not None:
            out["toolConfig"] = {"functionCallingConfig": _calling_config(body["function_call"], "function_call")}
    _generation_config(body, out)
    return out


# ------------------------------------------------------------------ answer

cdef inline long long _count(dict meta, str key):
    cdef object value = meta.get(key)
    if isinstance(value, int):
        return value
    return 0


cpdef dict usage_from(object meta):
    """Gemini ``usageMetadata`` as OpenAI usage (``make_usage``).

    promptTokenCount already includes cachedContentTokenCount; thoughts are
    completion tokens (also shown as ``reasoning_tokens``); tool-use prompt
    tokens are prompt tokens, so the total is Gemini's totalTokenCount.
    """
    cdef dict usage
    cdef long long cached, thoughts
    if not isinstance(meta, dict):
        return make_usage(0, 0)
    cached = _count(meta, "cachedContentTokenCount")
    thoughts = _count(meta, "thoughtsTokenCount")
    usage = make_usage(
        _count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount") - cached,
        _count(meta, "candidatesTokenCount") + thoughts,
        cached,
    )
    if thoughts:
        usage["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return usage


cdef dict _tool_call(dict call, object signature):
    cdef object args = call.get("args")
    cdef object call_id = call.get("id")
    cdef object name = call.get("name")
    cdef dict out = {
        "id": call_id if isinstance(call_id, str) and call_id else _new_call_id(),
        "type": "function",
        "function": {
            "name": name if isinstance(name, str) else "",
            "arguments": _dumps(args).decode() if args else "{}",
        },
    }
    if isinstance(signature, str) and signature:
        out["extra_content"] = {_GOOGLE: {_THOUGHT_SIGNATURE: signature}}
    return out


cdef inline str _finish(object reason, bint has_calls):
    cdef str finish = _FINISH.get(reason, "stop")
    if has_calls and finish == "stop":
        return "tool_calls"
    return finish


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


cpdef dict chat_answer(dict answer, str id, long long created, str model):
    """A Gemini ``GenerateContentResponse`` as an OpenAI ``chat.completion``."""
    cdef list choices = []
    cdef list texts, calls
    cdef object candidate, content, parts, part, text, call, index
    cdef dict message
    cdef Py_ssize_t pos = 0
    for candidate in answer.get("candidates") or ():
        if not isinstance(candidate, dict):
            continue
        texts = []
        calls = []
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        if isinstance(parts, list):
            for part in parts:
                if not isinstance(part, dict) or part.get("thought") is True:
                    continue
                text = part.get("text")
                if isinstance(text, str):
                    texts.append(text)
                call = part.get("functionCall")
                if isinstance(call, dict):
                    calls.append(_tool_call(call, part.get("thoughtSignature")))
        message = {
            "role": "assistant",
            "content": "".join(texts) if texts or not calls else None,
            "refusal": None,
        }
        if calls:
            message["tool_calls"] = calls
        index = candidate.get("index")
        choices.append({
            "index": index if isinstance(index, int) else pos,
            "message": message,
            "logprobs": None,
            "finish_reason": _finish(candidate.get("finishReason"), bool(calls)),
        })
        pos += 1
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": usage_from(answer.get("usageMetadata")),
    }


# ------------------------------------------------------------------ stream

cdef class _Choice:
    cdef bint finished
    cdef int calls         # tool calls sent so far: the next one's index


cdef class GeminiStream:
    """Gemini ``streamGenerateContent?alt=sse`` bytes in, OpenAI chunk events out.

    Gemini has no ``[DONE]``: the usage chunk (if asked) and ``[DONE]`` come
    from ``close()`` at EOF, once every choice has finished.
    """

    cdef SSEDecoder _decoder
    cdef str _id
    cdef long long _created
    cdef str _model
    cdef bint _include_usage
    cdef dict _choices           # choice index -> _Choice
    cdef object _meta            # the last usageMetadata seen
    cdef readonly object error   # Gemini's error object sent after HTTP 200, or a block
    cdef readonly object invalid
    cdef readonly object blocked # promptFeedback.blockReason when no candidate came
    cdef readonly bint done

    def __init__(self, str id, long long created, str model, bint include_usage):
        self._decoder = SSEDecoder()
        self._id = id
        self._created = created
        self._model = model
        self._include_usage = include_usage
        self._choices = {}
        self._meta = None
        self.error = None
        self.invalid = None
        self.blocked = None
        self.done = False

    @property
    def usage(self):
        """OpenAI usage from the last ``usageMetadata``, or None before any."""
        if self._meta is None:
            return None
        return usage_from(self._meta)

    cpdef bytes feed(self, bytes chunk):
        cdef list out = []
        cdef list events
        cdef Event event
        cdef object obj, candidates, candidate, meta, reason
        cdef Py_ssize_t pos
        try:
            events = self._decoder.feed(chunk)
        except SSEError as exc:
            self.invalid = str(exc)
            return b""
        for event in events:
            try:
                obj = _loads(event.data)
            except _JSONDecodeError:
                self.invalid = "an event is not valid JSON"
                break
            if not isinstance(obj, dict):
                self.invalid = "an event is not a JSON object"
                break
            if obj.get("error") is not None:
                self.error = obj["error"]
                break
            meta = obj.get("usageMetadata")
            if isinstance(meta, dict):
                self._meta = meta
            candidates = obj.get("candidates")
            if isinstance(candidates, list) and candidates:
                pos = 0
                for candidate in candidates:
                    if isinstance(candidate, dict):
                        self._candidate(candidate, pos, out)
                    pos += 1
            else:
                reason = block_reason(obj)
                if reason is not None:
                    self.blocked = reason
                    self.error = {"message": f"Gemini blocked the prompt ({reason})",
                                  "type": "invalid_request_error", "code": "content_filter"}
                    break
        if not out:
            return b""
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    cdef int _candidate(self, dict candidate, Py_ssize_t pos, list out) except -1:
        cdef object index = candidate.get("index")
        cdef int i = index if isinstance(index, int) else pos
        cdef _Choice choice = self._choices.get(i)
        cdef object content, parts, part, text, call, reason
        cdef list texts = None
        cdef dict delta
        if choice is None:
            choice = _Choice()
            self._choices[i] = choice
            out.append(chunk_event(self._id, self._created, self._model, _ROLE_DELTA, None, i))
        if choice.finished:
            return 0  # one finish chunk per choice: what follows it (a repeat) is dropped
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        if isinstance(parts, list):
            for part in parts:
                if not isinstance(part, dict) or part.get("thought") is True:
                    continue
                text = part.get("text")
                if isinstance(text, str) and text:
                    if texts is None:
                        texts = [text]
                    else:
                        texts.append(text)
                call = part.get("functionCall")
                if isinstance(call, dict):
                    if texts is not None:
                        out.append(self._text(texts, i))
                        texts = None
                    delta = {"index": choice.calls, **_tool_call(call, part.get("thoughtSignature"))}
                    choice.calls += 1
                    out.append(chunk_event(self._id, self._created, self._model, {"tool_calls": [delta]}, None, i))
            if texts is not None:
                out.append(self._text(texts, i))
        reason = candidate.get("finishReason")
        if isinstance(reason, str) and reason:
            choice.finished = True
            out.append(chunk_event(self._id, self._created, self._model, {}, _finish(reason, choice.calls > 0), i))
        return 0

    cdef bytes _text(self, list texts, int i):
        return chunk_event(self._id, self._created, self._model,
                           {"content": texts[0] if len(texts) == 1 else "".join(texts)}, None, i)

    cpdef bytes close(self):
        """At EOF: the usage chunk (if asked) and ``[DONE]`` when every choice finished."""
        cdef _Choice choice
        cdef bytes out
        try:
            self._decoder.close()
        except SSEError as exc:
            if self.invalid is None:
                self.invalid = str(exc)
            return b""
        if self.error is not None or self.invalid is not None or not self._choices:
            return b""
        for choice in self._choices.values():
            if not choice.finished:
                return b""
        self.done = True
        if self._include_usage:
            out = usage_event(self._id, self._created, self._model, usage_from(self._meta))
            return out + DONE_EVENT
        return DONE_EVENT


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
    raise InvalidInput("Gemini embeds text only: 'input' must be a string or an array of strings "
                       "(token arrays are not supported)", "input")


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
