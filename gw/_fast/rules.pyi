"""Each conversion rule gw applies, defined once (cimported by every protocol module):

    make_usage(10, 5, cache_read=100)    # OpenAI usage, counted one way for every backend
    tool_arguments("null", "messages[1].tool_calls[0].function.arguments")   # {}
    stop_list("END", "stop")             # ["END"]; 5 -> InvalidInput (400)
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
    """OpenAI ``arguments`` (JSON text) as an object: absent, blank or "null" -> {}; else a 400."""

def stop_list(value: object, param: str) -> list[str] | None:
    """A string -> [it]; a list of strings; [] or None -> None; anything else -> 400."""

def max_tokens(body: dict[str, Any], default: object) -> Any:
    """max_completion_tokens > max_tokens > max_output_tokens > ``default``; a positive integer or 400."""

def data_url(url: str, param: str) -> tuple[str, str] | None:
    """``data:<type>;base64,<data>`` -> (type, data); another URL -> None; a bad data URL -> 400."""

def new_id(prefix: str) -> str:
    """new_id("call_") -> "call_" + 24 hex digits."""

def finish_reason(table: dict[Any, str], raw: object, has_tools: bool) -> str:
    """A backend's reason through ``table`` to stop | length | tool_calls | content_filter."""

def where(i: int, rest: str) -> str:
    """where(2, ".content") -> "messages[2].content" """

def embedding_inputs(body: dict[str, Any], backend: str) -> list[str]:
    """The texts of an embeddings request for a backend that takes only text (400 for tokens)."""
