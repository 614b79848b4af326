"""Each conversion rule gw applies, defined once (cimported by every protocol module):

    make_usage(10, 5, cache_read=100)    # OpenAI usage, counted one way for every backend
    tool_arguments("null", "messages[1].tool_calls[0].function.arguments")   # {}
    stop_list("END", "stop")             # ["END"]; 5 -> InvalidInput (400)

Where backends used to disagree, the rule decided once (``tests/fast/test_rules.py``
checks each through every backend's conversion):

- tool arguments ``"null"``, ``""`` or absent are ``{}`` on every backend (Ollama
  answered 400); arguments that are not a JSON object are a 400 everywhere;
- ``stop``: a string or strings, any number of them (the backend's own limit
  applies); anything else, ``5`` included, is a 400 everywhere (Gemini dropped it);
- token counts: an integer, never a boolean (Gemini counted ``true`` as 1);
- a tool's ``parameters``, when given, must be an object everywhere (Gemini and
  Ollama ignored anything else);
- ``tool_choice`` is read one way: ``"auto"``, ``"none"``, ``"required"`` or a
  named function, else one 400 message for every backend.

The request pieces every backend reads (content parts, image URLs, files, tool
calls, functions, ``tool_choice``, ``response_format``, ``reasoning_effort``,
sampling options) are ``cdef`` functions in ``rules.pxd``, invisible from Python.
"""

from typing import Any

class InvalidInput(ValueError):
    """A client request that cannot be converted; gw answers 400 with ``message``.

        raise InvalidInput("'tools[0].function.name' is required", param="tools[0].function.name")
    """

    message: str
    param: str | None
    def __init__(self, message: str, param: str | None = None) -> None: ...

def make_usage(
    uncached: int, completion: int, cache_read: int = 0, cache_write: int = 0, reasoning: int = 0
) -> dict[str, Any]:
    """OpenAI usage: prompt = uncached + cache_read + cache_write; cached_tokens = cache_read;
    ``completion_tokens_details.reasoning_tokens`` only when there was reasoning."""

def tool_arguments(raw: object, param: str) -> dict[str, Any]:
    """OpenAI ``arguments`` (JSON text) as an object: absent, blank or "null" -> {}; an object
    passes; invalid JSON, JSON that is no object, or no string -> 400 naming ``param``."""

def stop_list(value: object, param: str) -> list[str] | None:
    """A string -> [it]; a list of strings, any length; [] or None -> None; anything else
    (a number, a list holding a non-string) -> 400 naming ``param``."""

def max_tokens(body: dict[str, Any], default: object) -> Any:
    """max_completion_tokens > max_tokens > max_output_tokens > ``default``; the first one
    given must be a positive integer (not a boolean), else a 400 naming it."""

def data_url(url: str, param: str) -> tuple[str, str] | None:
    """``data:<type>;base64,<data>`` -> (type, data); another URL -> None; a bad data URL -> 400."""

def new_id(prefix: str) -> str:
    """new_id("call_") -> "call_" + 24 hex digits."""

def finish_reason(table: dict[Any, str], raw: object, has_tools: bool) -> str:
    """A backend's reason through ``table`` to stop | length | tool_calls | content_filter;
    an unknown or absent reason is stop; stop with tool calls is tool_calls."""

def where(i: int, rest: str) -> str:
    """where(2, ".content") -> "messages[2].content" """

def embedding_inputs(body: dict[str, Any], backend: str) -> list[str]:
    """The texts of an embeddings request for a backend that takes only text (400 for tokens)."""
