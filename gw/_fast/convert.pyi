"""OpenAI wire helpers: watch pass-through streams (``OpenAIStream``, ``classify_chunk``).

    flags = classify_chunk(event.data)
    if flags & IS_DONE: ...
    if flags & MAY_HAVE_USAGE:
        usage = orjson.loads(event.data).get("usage")   # confirm with a parse
"""

from typing import Any, Final

from typing_extensions import disjoint_base

from .sse import Framed

DONE_EVENT: Final[bytes]  # b"data: [DONE]\n\n", the last event of every OpenAI stream

IS_DONE: Final[int]
"""1: the payload is ``[DONE]`` (surrounding whitespace ignored)."""
MAY_HAVE_USAGE: Final[int]
"""2: a ``"usage"`` key with an object value (not null)."""
MAY_HAVE_ERROR: Final[int]
"""4: an ``"error"`` key with an object or string value."""
MAY_HAVE_FINISH: Final[int]
"""8: a ``"finish_reason"`` key with a string value (not null)."""
NOT_OBJECT: Final[int]
"""16: neither ``[DONE]`` nor shaped like a JSON object (``{`` ... ``}``): garbage."""

def sse_data(payload: bytes) -> bytes:
    """sse_data(b'{"a":1}') -> b'data: {"a":1}\\n\\n'"""

def error_event(error: dict[str, Any]) -> bytes:
    """error_event({"message": "upstream reset", "type": "api_error"})
    # -> b'data: {"error":{"message":"upstream reset","type":"api_error"}}\\n\\n'
    """

def classify_chunk(data: bytes) -> int:
    """Flags (IS_DONE | MAY_HAVE_USAGE | MAY_HAVE_ERROR | MAY_HAVE_FINISH) of one
    SSE ``data`` payload, from a byte scan without parsing. A set MAY_* flag is
    to be confirmed with orjson; an unset one is certain.
    """

@disjoint_base
class OpenAIStream(Framed):
    """Watches an OpenAI-compatible upstream stream on its way to the client.

        watch = OpenAIStream(forward_usage=False)
        while (chunk := await resp.read()) is not None:
            out = watch.feed(chunk)        # the upstream's event bytes, unchanged
            if out: yield out
            if watch.done: return
            if watch.error is not None or watch.invalid is not None: raise ...
        watch.close()

    Only events that may carry usage, an error or a finish_reason are parsed.
    The usage-only chunk is dropped unless ``forward_usage``.

    Azure's content-filter annotations (``"object":""``, ``"id":""``,
    ``"model":""``, ``"created":0``: the prompt filter results opening its
    streams, the async filter's choices without ``delta``) are the one rewrite:
    they go out in the stream's own object/id/created/model, each choice with
    an empty ``delta`` (``text``) if it had none, keeping their filter results.
    An opening annotation waits for the first answer chunk, whose names it takes.
    """

    usage: dict[str, Any] | None
    error: Any
    invalid: str | None
    done: bool
    finished: bool

    def __init__(self, forward_usage: bool) -> None: ...
    def feed(self, chunk: bytes) -> bytes: ...
    def close(self) -> bytes:
        """At EOF: ``[DONE]`` if the stream finished without one, else b""."""

