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
    """A token count from JSON: an int (not a bool), else 0."""
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
