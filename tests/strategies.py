"""Hypothesis strategies shared by the tests: streams rendered to bytes with what they mean."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

LINE_ENDS = (b"\n", b"\r\n", b"\r")
BOM = b"\xef\xbb\xbf"

# Text that may sit on one line: anything but CR and LF (and lone surrogates,
# which UTF-8 cannot encode), with non-ASCII well represented.
line_text = st.one_of(
    st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20),
    st.sampled_from(["héllo 你好 🎉", "🎉", "你好", "é", " leading space", "a: b", ":", ""]),
)


@dataclass(frozen=True)
class Expected:
    """What a decoder must report for one event."""

    event: str | None
    data: bytes
    id: str | None


@dataclass(frozen=True)
class SSEStream:
    """A rendered stream, its events, and where the last event's blank line ends."""

    raw: bytes
    events: tuple[Expected, ...]
    dispatched_end: int


# One line of an event block: (kind, value)
_field = st.one_of(
    st.tuples(st.just("data"), line_text),
    st.tuples(st.just("event"), line_text),
    st.tuples(st.just("id"), line_text),
    st.tuples(st.just("retry"), st.integers(0, 10_000).map(str)),
    st.tuples(st.just("unknown"), line_text),
    st.tuples(st.just("comment"), line_text),
)
_unknown_names = st.sampled_from(["foo", "dat", "ids", "x-data", " data", "Data", "events"])


@st.composite
def sse_streams(draw: st.DrawFn) -> SSEStream:
    """An SSE stream mixing events, comment blocks, stray blank lines and every line end."""
    out = bytearray()
    events: list[Expected] = []
    dispatched_end = 0
    prev_end = b""

    def line(content: bytes) -> None:
        nonlocal prev_end
        end = draw(st.sampled_from(LINE_ENDS))
        if not content and prev_end == b"\r" and end == b"\n":
            end = b"\r\n"  # a bare LF here would complete the previous CR
        out.extend(content + end)
        prev_end = end

    def field(name: bytes, value: str) -> None:
        v = value.encode()
        if not v and draw(st.booleans()):
            line(name)  # a field with no colon has an empty value
            return
        sep = draw(st.sampled_from([b": ", b":"]))
        if sep == b":" and v.startswith(b" "):
            sep = b": "  # one space after the colon is dropped
        line(name + sep + v)

    if draw(st.booleans()):
        out.extend(BOM)
    blocks = draw(st.lists(st.sampled_from(["event", "comments", "blank"]), max_size=8))
    for block in blocks:
        if block == "blank":
            line(b"")
        elif block == "comments":
            for text in draw(st.lists(line_text, min_size=1, max_size=3)):
                line(b":" + text.encode())
            line(b"")
        else:
            items = draw(
                st.lists(_field, min_size=1, max_size=6).filter(
                    lambda xs: any(k in ("data", "event", "id") for k, _ in xs)
                )
            )
            data: list[bytes] = []
            event = ident = None
            for kind, value in items:
                if kind == "comment":
                    line(b":" + value.encode())
                elif kind == "unknown":
                    field(draw(_unknown_names).encode(), value)
                else:
                    field(kind.encode(), value)
                if kind == "data":
                    data.append(value.encode())
                elif kind == "event":
                    event = value
                elif kind == "id":
                    ident = value
            line(b"")
            events.append(Expected(event, b"\n".join(data), ident))
            dispatched_end = len(out)
    # Trailing bytes that dispatch nothing and are no cut event.
    for text in draw(st.lists(line_text, max_size=2)):
        line(b":" + text.encode())
    return SSEStream(bytes(out), tuple(events), dispatched_end)


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """`data` cut at arbitrary points (possibly inside UTF-8 characters or a CRLF)."""
    if not data:
        return [data]
    cuts = sorted(draw(st.sets(st.integers(1, len(data) - 1), max_size=len(data))) if len(data) > 1 else [])
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def bytewise(data: bytes) -> list[bytes]:
    """`data` one byte at a time."""
    return [data[i : i + 1] for i in range(len(data))]


@dataclass(frozen=True)
class NDJSONStream:
    raw: bytes
    lines: tuple[bytes, ...]


_json_line = st.one_of(
    st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), min_size=1, max_size=30),
    st.sampled_from(['{"response":"héllo 你好 🎉","done":false}', '{"done":true}', "{}"]),
).filter(lambda s: not s.isspace() and not s.encode().isspace())


@st.composite
def ndjson_streams(draw: st.DrawFn) -> NDJSONStream:
    """NDJSON lines with LF or CRLF ends, blank and whitespace-only lines, maybe no final newline."""
    out = bytearray()
    lines: list[bytes] = []
    for kind in draw(st.lists(st.sampled_from(["line", "line", "blank"]), max_size=10)):
        end = draw(st.sampled_from([b"\n", b"\r\n"]))
        if kind == "blank":
            out.extend(draw(st.sampled_from([b"", b" ", b"\t", b"  \t "])) + end)
        else:
            text = draw(_json_line).encode()
            out.extend(text + end)
            lines.append(text)
    if draw(st.booleans()):
        text = draw(_json_line).encode()
        out.extend(text)  # the last line may lack its newline
        lines.append(text)
    return NDJSONStream(bytes(out), tuple(lines))
