"""The typed event core: backend decoders call a ``Sink``, client encoders are Sinks.

    encoder = ChatChunks(created, "gpt-4o", include_usage=True)
    converter = Converter(AnthropicDecoder(encoder), encoder)
    out = converter.feed(upstream_bytes)        # the client's bytes, maybe b""

One answer's events, in order: ``start`` once; ``text`` / ``reasoning`` /
``tool_start`` / ``tool_args`` any number of times; ``usage`` (the last call
wins); ``finish`` once per choice; ``end`` once, last.
"""

from typing import Any

from typing_extensions import disjoint_base

from .sse import Framed

@disjoint_base
class Sink:
    """Receives one answer's events; every method does nothing here."""

    def start(self, id: str | None) -> None: ...
    def text(self, choice: int, text: str) -> None: ...
    def reasoning(self, choice: int, text: str) -> None: ...
    def tool_start(
        self, choice: int, index: int, call_id: str, name: str, extra: dict[str, Any] | None
    ) -> None: ...
    def tool_args(self, choice: int, index: int, fragment: str) -> None: ...
    def usage(self, input: int, output: int, cache_read: int, cache_write: int, reasoning: int) -> None: ...
    def finish(self, choice: int, reason: str, matched: str | None) -> None: ...
    def end(self) -> None: ...

@disjoint_base
class Encoder(Sink):
    """A Sink that writes a client protocol; ``take()`` returns what was written since the last call."""

    started: bool
    finished: bool
    ended: bool
    invalid: str | None
    has_usage: bool
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    def take(self) -> bytes: ...
    def openai_usage(self) -> dict[str, Any] | None: ...

@disjoint_base
class Decoder(Framed):
    """A backend's answer decoder, driving a Sink (``anthropic.AnthropicDecoder``,
    ``gemini.GeminiDecoder``, ``ollama.OllamaDecoder``, ``openai.ChatDecoder``)."""

    def __init__(self, sink: Sink) -> None: ...
    def feed(self, chunk: bytes) -> None:
        """Decodes what ``chunk`` completes, calling the sink."""
    def close(self) -> None:
        """At the upstream's EOF: notes a stream cut inside an event."""

@disjoint_base
class Converter:
    """``decoder`` feeding ``encoder``: the push converter the stream pump drives."""

    decoder: Any
    encoder: Encoder
    def __init__(self, decoder: Any, encoder: Encoder) -> None:
        """``decoder``: one of gw's ``Decoder``s, or any object with ``feed(bytes)``,
        ``close()``, ``error`` and ``invalid``."""
    def feed(self, chunk: bytes) -> bytes:
        """The decoder reads ``chunk``; what the encoder wrote meanwhile (maybe b"")."""
    def close(self) -> bytes:
        """At the upstream's EOF: the decoder's ``close()``, then what the encoder wrote."""
    @property
    def done(self) -> bool:
        """The encoder wrote the answer's end."""
    @property
    def error(self) -> Any:
        """The decoder's: the backend's error object, sent after HTTP 200."""
    @property
    def invalid(self) -> str | None:
        """The decoder's (the bytes are not the protocol), else the encoder's."""
    @property
    def usage(self) -> dict[str, Any] | None:
        """The encoder's ``openai_usage()``."""

class Recorder(Sink):
    """Keeps each event as a tuple, in order (tests): ``[("start", "msg_1"), ("text", 0, "Hi"), ...]``."""

    events: list[tuple[Any, ...]]
    def __init__(self) -> None: ...
