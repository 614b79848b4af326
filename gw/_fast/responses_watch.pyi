"""The Responses API passed through: its stream watched, its usage read.

    watch = ResponsesWatch()
    out = watch.feed(upstream_bytes)     # the upstream's own event bytes, maybe b""
    watch.usage                          # OpenAI chat-shaped, once the response ended
"""

from typing import Any

from typing_extensions import disjoint_base

from .sse import Watch

def response_usage(usage: object) -> dict[str, Any] | None:
    """A Response object's ``usage`` as OpenAI chat usage, or None."""

@disjoint_base
class ResponsesWatch(Watch):
    """Watches a Responses stream forwarded as it is: the final events for the usage
    and the end, ``error`` kept back; the opening events wait for the first output."""

    @property
    def usage(self) -> dict[str, Any] | None: ...
    def __init__(self) -> None: ...
    def feed(self, chunk: bytes) -> bytes: ...
    def close(self) -> bytes: ...
