"""Push decoders for upstream streams: bytes in, whole events out.

    decoder = SSEDecoder()
    async for chunk in response.aiter_bytes():
        for event in decoder.feed(chunk):
            if event.data == b"[DONE]":
                ...
    decoder.close()  # raises SSEError if the stream was cut inside an event
"""

from typing import Any

from typing_extensions import disjoint_base

class SSEError(ValueError):
    """A stream cut inside an event (at close()), or an event over the size cap.

    After it is raised the decoder is not to be used again.
    """

@disjoint_base
class Event:
    """One dispatched Server-Sent Event.

        Event(data=b'{"x":1}', event="message_start", id="7")

    ``event`` and ``id`` are the values of this event's ``event:`` and ``id:``
    fields (None when absent; ``id`` does not carry over between events).
    ``data`` is its ``data:`` lines joined with ``b"\\n"``. ``raw`` is the exact
    stream bytes from just after the previous event up to and including the
    blank line that ended this one; comment-only blocks (keep-alives) before it
    are included. Joining every ``raw`` gives back the stream up to the last
    event (when a CR ending an event is the last byte of a chunk, the event is
    dispatched at once and the LF that follows opens the next ``raw``).
    """

    def __init__(
        self, data: bytes = b"", event: str | None = None, id: str | None = None, raw: bytes = b""
    ) -> None: ...
    @property
    def event(self) -> str | None: ...
    @property
    def data(self) -> bytes: ...
    @property
    def id(self) -> str | None: ...
    @property
    def raw(self) -> bytes: ...

@disjoint_base
class SSEDecoder:
    """WHATWG event-stream decoder, split-anywhere safe.

        decoder = SSEDecoder(max_event_bytes=1 << 20)
        decoder.feed(b'data: {"a":1}\\r\\n\\r')   # -> [Event(data=b'{"a":1}', ...)]
        decoder.feed(b"\\n: ping\\n\\ndata: {")   # -> []
        decoder.close()                       # SSEError: ended inside an event

    Lines end in CRLF, LF or CR (a CRLF split across chunks is one line end);
    a BOM opening the stream is skipped; ``:`` lines are comments; one space
    after the field's colon is dropped; ``data`` lines append, ``event`` and
    ``id`` set, ``retry`` and unknown fields are ignored. A blank line
    dispatches an event once a ``data``, ``event`` or ``id`` line was seen.
    """

    def __init__(self, max_event_bytes: int = 1 << 20) -> None: ...
    def feed(self, chunk: bytes) -> list[Event]:
        """Take the next chunk; return the events it completed (maybe [])."""
    def close(self) -> None:
        """End of stream: raise SSEError if an event was started and not finished.

        Trailing comments, blank lines and whitespace are fine.
        """

@disjoint_base
class NDJSONDecoder:
    """Newline-delimited JSON lines (Ollama), split-anywhere safe.

        decoder = NDJSONDecoder()
        decoder.feed(b'{"a":1}\\r\\n\\n{"b"')   # -> [b'{"a":1}']
        decoder.close()                       # -> [b'{"b"']

    Lines come without their line end (a trailing CR is dropped);
    whitespace-only lines are skipped. A line over ``max_line_bytes`` raises
    SSEError.
    """

    def __init__(self, max_line_bytes: int = 1 << 20) -> None: ...
    def feed(self, chunk: bytes) -> list[bytes]:
        """Take the next chunk; return the complete non-blank lines (maybe [])."""
    def close(self) -> list[bytes]:
        """End of stream: the last line if it had no newline, as [line], else []."""

@disjoint_base
class Framed:
    """What reads a backend's event stream shares (the decoders, the pass-through
    watchers): it ends at the answer's end, at the backend's error, or at bytes
    that are not the protocol."""

    @property
    def done(self) -> bool: ...
    @property
    def error(self) -> Any:
        """The backend's error (its object or text), sent after HTTP 200; None if none."""
    @property
    def invalid(self) -> str | None:
        """Why the bytes are not the protocol, or None."""


@disjoint_base
class Watch(Framed):
    """A stream forwarded as it is, watched (the pass-through watchers): its own bytes out,
    a few events parsed, the opening ones held until the first other one."""

    def __init__(self, parse: frozenset[str], opening: frozenset[str], ends: frozenset[str]) -> None: ...
    def feed(self, chunk: bytes) -> bytes:
        """The upstream's own bytes of the events ``chunk`` completes (maybe b"")."""
    def close(self) -> bytes:
        """At EOF: notes a stream cut inside an event; returns b""."""
