# cython: language_level=3
"""Each conversion rule gw applies, defined once and cimported by every protocol module.

The README's "Protocol conversion" page states them; ``tests/fast/test_rules.py``
checks each across every backend.
"""

import os

import orjson


_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_urandom = os.urandom


class InvalidInput(ValueError):
    """A client request that cannot be converted; the message is for the client (400).

    ``param`` names the offending field (``messages[2].content[0].image_url``).
    """

    def __init__(self, message, param=None):
        super().__init__(message)
        self.message = message
        self.param = param


cpdef dict make_usage(long long uncached, long long completion, long long cache_read=0,
                      long long cache_write=0, long long reasoning=0):
    """OpenAI usage counted one way for every backend.

    prompt_tokens = uncached + cache_read + cache_write input tokens;
    prompt_tokens_details.cached_tokens = cache_read; total = prompt + completion;
    completion_tokens_details.reasoning_tokens only when there was reasoning.
    """
    cdef long long prompt = uncached + cache_read + cache_write
    cdef dict usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read},
    }
    if reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage


cpdef dict tool_arguments(object raw, str param):
    """A tool call's OpenAI ``arguments`` (a JSON text) as the object other protocols want.

    Absent, empty, blank or ``"null"`` arguments are ``{}``; an object passes
    (some clients send one); anything else, or JSON that is not an object, is
    a 400 naming ``param``.
    """
    cdef object value
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        raise InvalidInput(f"'{param}' must be a JSON string", param)
    if not (<str>raw).strip():
        return {}
    try:
        value = _loads(raw)
    except _JSONDecodeError:
        raise InvalidInput(f"'{param}' is not valid JSON", param) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"'{param}' must be a JSON object", param)
    return value


cpdef object stop_list(object value, str param):
    """``stop`` (OpenAI) or ``stop_sequences`` (Anthropic) as a list of strings, or None.

    A string is a list of one; an empty list is None; anything else is a 400.
    Any number of strings pass: the backend's own limit applies (OpenAI's is 4,
    Gemini's 5) and its 400 is kept.
    """
    cdef object item
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        for item in <list>value:
            if not isinstance(item, str):
                raise InvalidInput(f"'{param}' must be a string or an array of strings", param)
        return value if value else None
    raise InvalidInput(f"'{param}' must be a string or an array of strings", param)


cpdef object max_tokens(dict body, object default):
    """The answer's token limit: ``max_completion_tokens``, else ``max_tokens``
    (else ``max_output_tokens``), else ``default``; a positive integer or a 400."""
    cdef str name
    cdef object value
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(name)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInput(f"'{name}' must be a positive integer", name)
            return value
    return default


cpdef tuple data_url(str url, str param):
    """``data:<media type>;base64,<data>`` as (media type, data); None for any
    other URL; a 400 naming ``param`` for a data URL that is not base64."""
    cdef str head, data
    cdef str sep
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        raise InvalidInput(f"'{param}' must be a base64 data URL (data:<media type>;base64,...)", param)
    return head[:-7], data


cpdef str new_id(str prefix):
    """new_id("chatcmpl-") -> 'chatcmpl-' + 24 hex digits."""
    return prefix + _urandom(12).hex()


cpdef str finish_reason(dict table, object raw, bint has_tools):
    """A backend's finish (stop) reason through its ``table`` to stop, length,
    tool_calls or content_filter; unknown reasons are stop; a stop with tool
    calls is tool_calls."""
    cdef object reason = table.get(raw, "stop")
    if has_tools and reason == "stop":
        return "tool_calls"
    return reason


cdef long long count(object value) noexcept:
    """A token count from JSON: an int (not a bool: ``true`` is no count), else 0."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return value
        except OverflowError:
            return 0
    return 0


cpdef str where(Py_ssize_t i, str rest):
    """where(2, ".content[0]") -> 'messages[2].content[0]'"""
    return f"messages[{i}]{rest}"


cpdef list embedding_inputs(dict body, str backend):
    """The texts of an OpenAI embeddings body, for a ``backend`` that embeds text only:
    a string is a list of one; token arrays, an empty list or anything else are a
    400 naming ``input``."""
    cdef object value = body.get("input")
    cdef object item
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        for item in <list>value:
            if not isinstance(item, str):
                break
        else:
            return value
    raise InvalidInput(f"{backend} embeds text only: 'input' must be a string or an array of strings "
                       "(token arrays are not supported)", "input")


# ------------------------------------------------------------------ OpenAI request pieces every backend reads

cdef object invalid(str param, str what):
    """InvalidInput("'<param>' <what>", param), for ``raise``."""
    return InvalidInput(f"'{param}' {what}", param)


cdef list content_parts(object content, str param):
    """A message's ``content`` as a list of parts: a string is one text part (none
    when empty), None is none; anything but a list is a 400 naming ``param``."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise invalid(param, "must be a string or an array of content parts")
    return content


cdef str part_text(object part, str kind, str param):
    """The string of a ``text`` (or ``refusal``) part, maybe empty; else a 400."""
    cdef object text = (<dict>part).get(kind)
    if not isinstance(text, str):
        raise invalid(f"{param}.{kind}", "must be a string")
    return text


cdef str part_type(object part):
    """A content part's ``type``, or None (not an object, no type)."""
    return (<dict>part).get("type") if isinstance(part, dict) else None


cdef list texts(object content, str param, str role):
    """The non-empty texts of a content that takes only text (system, developer,
    assistant, tool): a string, or ``text`` and ``refusal`` parts; any other
    part is a 400."""
    cdef list out = []
    cdef object part, kind
    cdef str text
    cdef Py_ssize_t j = 0
    for part in content_parts(content, param):
        kind = part_type(part)
        if kind != "text" and kind != "refusal":
            raise invalid(f"{param}[{j}]", f"must be a text part: {role} messages take only text")
        text = part_text(part, kind, f"{param}[{j}]")
        if text:
            out.append(text)
        j += 1
    return out


cdef tuple image_url(object image, str param):
    """An ``image_url`` part's value (an object with ``url``, or the URL) as
    (url, (media type, base64 data) for a data URL else None); ``param`` names
    the part's ``image_url``. No URL is a 400."""
    cdef object url = (<dict>image).get("url") if isinstance(image, dict) else image
    param += ".url"
    if not isinstance(url, str) or not url:
        raise invalid(param, "must be a string")
    return url, data_url(url, param)


cdef tuple file_data(object file, str param, str backend):
    """A ``file`` part's ``file_data`` as (media type, base64 data): a data URL,
    or bare base64 (a PDF). Without it (a ``file_id``) it is a 400 naming ``param``."""
    cdef object data = (<dict>file).get("file_data") if isinstance(file, dict) else None
    cdef tuple parsed
    if not isinstance(data, str) or not data:
        raise InvalidInput(f"'{param}' is required: {backend} needs the file inline as 'file_data' "
                           "(a base64 data URL); 'file_id' is not supported", param)
    parsed = data_url(data, param)
    if parsed is None:
        return "application/pdf", data
    return parsed[0] or "application/pdf", parsed[1]


cdef bint is_link(str url, bint gs):
    """An http(s) URL (or ``gs://`` when ``gs``), which the backend fetches itself."""
    cdef str lower = url[:8].lower()
    return lower.startswith("https://") or lower.startswith("http://") or (gs and lower.startswith("gs://"))


cdef list tool_calls(object calls, Py_ssize_t i):
    """An assistant message's ``tool_calls`` as (call, name, arguments object)
    tuples: each a function call with a name, its arguments by ``tool_arguments``."""
    cdef list out = []
    cdef object call, fn, name
    cdef Py_ssize_t j = 0
    if calls is None:
        return out
    if not isinstance(calls, list):
        raise invalid(where(i, ".tool_calls"), "must be an array")
    for call in <list>calls:
        if not isinstance(call, dict) or (<dict>call).get("type", "function") != "function":
            raise invalid(where(i, f".tool_calls[{j}]"), "must be a function tool call")
        fn = (<dict>call).get("function")
        name = (<dict>fn).get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise invalid(where(i, f".tool_calls[{j}].function.name"), "is required")
        out.append((call, name, tool_arguments((<dict>fn).get("arguments"),
                                               where(i, f".tool_calls[{j}].function.arguments"))))
        j += 1
    return out


cdef str tool_name(dict names, object call_id, Py_ssize_t i):
    """The function a ``tool`` message answers: its ``tool_call_id`` must be a
    call of an earlier assistant message (``names``: call id -> function name)."""
    cdef object name = names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        raise invalid(where(i, ".tool_call_id"), "must be the id of a tool call in an earlier assistant message")
    return name


cdef str function_name(dict message, Py_ssize_t i):
    """A legacy ``function`` message's ``name`` (required)."""
    cdef object name = message.get("name")
    if not isinstance(name, str) or not name:
        raise invalid(where(i, ".name"), "is required")
    return name


cdef dict _function(object fn, str param):
    # an OpenAI function declaration reduced to name, description, parameters
    cdef object name, params
    cdef dict out
    if not isinstance(fn, dict):
        raise invalid(param, "must be an object")
    name = (<dict>fn).get("name")
    if not isinstance(name, str) or not name:
        raise invalid(param + ".name", "is required")
    out = {"name": name}
    if isinstance((<dict>fn).get("description"), str):
        out["description"] = (<dict>fn)["description"]
    params = (<dict>fn).get("parameters")
    if params is not None:
        if not isinstance(params, dict):
            raise invalid(param + ".parameters", "must be an object")
        out["parameters"] = params
    return out


cdef list functions(dict body, str backend, bint legacy):
    """The functions of ``tools`` (and of legacy ``functions`` when ``legacy``),
    each ``{"name", "description"?, "parameters"?}``: only function tools, each
    with a name; ``parameters``, when given, an object."""
    cdef list out = []
    cdef object tools = body.get("tools")
    cdef object tool
    cdef Py_ssize_t j
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidInput("'tools' must be an array", "tools")
        for j, tool in enumerate(<list>tools):
            if not isinstance(tool, dict) or (<dict>tool).get("type", "function") != "function":
                raise InvalidInput(f"'tools[{j}]': only function tools are supported for {backend}", f"tools[{j}]")
            out.append(_function((<dict>tool).get("function"), f"tools[{j}].function"))
    tools = body.get("functions")
    if legacy and isinstance(tools, list):
        for j, tool in enumerate(<list>tools):
            out.append(_function(tool, f"functions[{j}]"))
    return out


cdef tuple tool_choice(dict body):
    """``tool_choice`` (else legacy ``function_call``) as (choice, function name, param):
    choice is "auto", "none", "required" or "function" (with the name); (None, None, param) when absent."""
    cdef str param = "tool_choice"
    cdef object choice = body.get(param)
    cdef object fn, name
    if choice is None:
        param = "function_call"
        choice = body.get(param)
        if choice is None:
            return None, None, "tool_choice"
    if choice == "auto" or choice == "none" or choice == "required":
        return choice, None, param
    if isinstance(choice, dict):
        fn = (<dict>choice).get("function") if "function" in choice else choice
        name = (<dict>fn).get("name") if isinstance(fn, dict) else None
        if isinstance(name, str) and name:
            return "function", name, param
    raise InvalidInput(f"'{param}' must be 'auto', 'none', 'required' or "
                       "{\"type\": \"function\", \"function\": {\"name\": ...}}", param)


cdef tuple response_format(dict body):
    """``response_format`` as (type, JSON schema or None): text, json_object or
    json_schema (the schema when it holds one); (None, None) when absent."""
    cdef object fmt = body.get("response_format")
    cdef object kind, spec
    if fmt is None:
        return None, None
    kind = (<dict>fmt).get("type") if isinstance(fmt, dict) else None
    if kind == "json_schema":
        spec = (<dict>fmt).get("json_schema")
        if isinstance(spec, dict) and isinstance((<dict>spec).get("schema"), dict):
            return kind, (<dict>spec)["schema"]
        return kind, None
    if kind == "text" or kind == "json_object":
        return kind, None
    raise InvalidInput("'response_format.type' must be 'text', 'json_object' or 'json_schema'", "response_format")


cdef object effort(dict body, dict table):
    """``reasoning_effort`` through the backend's ``table``, or None when absent."""
    cdef object value = body.get("reasoning_effort")
    if value is None:
        return None
    if not isinstance(value, str) or value not in table:
        raise InvalidInput("'reasoning_effort' must be 'none', 'minimal', 'low', 'medium' or 'high'",
                           "reasoning_effort")
    return table[value]


# The OpenAI sampling fields, in the order of the backends' ``names`` tuples
# (``options``); max tokens and stop go through their rules.
cdef tuple _OPTIONS = ("temperature", "top_p", "top_k", "max_tokens", "stop", "seed",
                       "presence_penalty", "frequency_penalty")


cdef int options(dict body, dict out, tuple names) except -1:
    """Copies the sampling fields into ``out`` under the backend's ``names`` (one
    per field of temperature, top_p, top_k, max tokens, stop, seed,
    presence_penalty, frequency_penalty; None: the backend has none). Max
    tokens is ``max_tokens``' precedence, stop ``stop_list``."""
    cdef Py_ssize_t k
    cdef object name, value
    for k in range(8):
        name = names[k]
        if name is None:
            continue
        if k == 3:
            value = max_tokens(body, None)
        elif k == 4:
            value = stop_list(body.get("stop"), "stop")
        else:
            value = body.get(_OPTIONS[k])
        if value is not None:
            out[name] = value
    return 0


cdef int add_turn(list turns, str role, str key, list items) except -1:
    """Appends a turn ``{"role": role, key: items}``; a neighbour of the same role
    takes the items instead (Anthropic and Gemini want the roles to alternate)."""
    cdef dict last
    if not items:
        return 0
    if turns:
        last = turns[-1]
        if last["role"] == role:
            last[key].extend(items)
            return 0
    turns.append({"role": role, key: items})
    return 0


cdef int stream_with_usage(dict body, dict out) except -1:
    """A client request that streams (``stream: true``), as the chat request a converting
    backend takes: streamed, with the usage chunk (the client's protocol needs the counts)."""
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return 0
