"""Hypothesis strategies shared by the tests: streams rendered to bytes with what they mean."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import strategies as st

LINE_ENDS = (b"\n", b"\r\n", b"\r")
BOM = b"\xef\xbb\xbf"

# Text that may sit on one line: anything but CR and LF (and lone surrogates,
# which UTF-8 cannot encode), with non-ASCII well represented.
line_text = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20),
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
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def bytewise(data: bytes) -> list[bytes]:
    """`data` one byte at a time."""
    return [data[i : i + 1] for i in range(len(data))]


@dataclass(frozen=True)
class NDJSONStream:
    raw: bytes
    lines: tuple[bytes, ...]


_json_line = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), min_size=1, max_size=30),
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


# ---------------------------------------------------------------- OpenAI chat chunk streams


@dataclass(frozen=True)
class ChatStream:
    """An OpenAI ``chat.completion.chunk`` stream, the events a decoder must
    report for it (``events.Recorder`` tuples), and the same answer whole."""

    raw: bytes
    events: tuple[tuple[object, ...], ...]
    answer: dict[str, Any]


_OPENAI_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
                  "content_filter": "content_filter", "function_call": "tool_calls"}  # fmt: skip
_piece = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=8),
    st.sampled_from(["héllo", " 你好", "🎉", "\n", '"', "\\", "data: [DONE]"]),
)
_argument_objects = st.dictionaries(
    st.sampled_from(["city", "path", "n", "ünïcode"]),
    st.one_of(st.text(max_size=6), st.integers(-1000, 1000), st.booleans(), st.none()),
    max_size=3,
)


@st.composite
def _fragments(draw: st.DrawFn, text: str) -> list[str]:
    cuts = sorted(draw(st.sets(st.integers(1, max(len(text) - 1, 1)), max_size=4))) if len(text) > 1 else []
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@st.composite
def chat_streams(draw: st.DrawFn) -> ChatStream:
    """A streamed chat answer: a role chunk, reasoning (``reasoning_content`` or
    vLLM's ``reasoning``), text and tool calls in any order and any pieces, the
    finish chunk, maybe a usage chunk, ``[DONE]``; CRLF and comments at times."""
    ident = "chatcmpl-" + draw(st.text("abc123", min_size=1, max_size=6))
    crlf = draw(st.booleans())
    out = bytearray()
    events: list[tuple[object, ...]] = [("start", ident)]

    def emit(obj: dict[str, object]) -> None:
        if draw(st.integers(0, 9)) == 0:
            out.extend(b": keep-alive\r\n\r\n" if crlf else b": keep-alive\n\n")
        out.extend(b"data: " + orjson.dumps(obj) + (b"\r\n\r\n" if crlf else b"\n\n"))

    def delta(d: dict[str, object], finish: object = None) -> None:
        emit({"id": ident, "object": "chat.completion.chunk", "created": 1, "model": "m",
              "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}]})  # fmt: skip

    delta({"role": "assistant", "content": ""})
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, object]] = []
    for kind in draw(st.lists(st.sampled_from(["text", "reasoning", "tool"]), max_size=6)):
        if kind == "tool":
            k = len(calls)
            name = draw(st.sampled_from(["get_weather", "read_file", "now"]))
            call_id = f"call_{k}"
            arguments = orjson.dumps(draw(_argument_objects)).decode() if draw(st.integers(0, 4)) else ""
            pieces = draw(_fragments(arguments)) if arguments else []
            first = ""
            if pieces:
                first = pieces[0] if draw(st.booleans()) else ""
            delta({"tool_calls": [{"index": k, "id": call_id, "type": "function",
                                   "function": {"name": name, "arguments": first}}]})  # fmt: skip
            events.append(("tool_start", 0, k, call_id, name, None))
            rest = pieces[1:] if first else pieces
            if first:
                events.append(("tool_args", 0, k, first))
            for piece in rest:
                delta({"tool_calls": [{"index": k, "function": {"arguments": piece}}]})
                events.append(("tool_args", 0, k, piece))
            function = {"name": name, "arguments": arguments}
            calls.append({"id": call_id, "type": "function", "function": function})
            continue
        for piece in draw(st.lists(_piece, min_size=1, max_size=3)):
            if kind == "text":
                delta({"content": piece})
                texts.append(piece)
            else:
                delta({draw(st.sampled_from(["reasoning_content", "reasoning"])): piece})
                reasoning.append(piece)
            if piece:
                events.append((kind, 0, piece))
    raw_finish = draw(st.sampled_from([*_OPENAI_FINISH, "eos"]))
    finish = _OPENAI_FINISH.get(raw_finish, "stop")
    if calls and finish == "stop":
        finish = "tool_calls"
    delta({}, raw_finish)
    events.append(("finish", 0, finish, None))
    usage = None
    if draw(st.booleans()):
        prompt, cached = draw(st.integers(0, 10_000)), draw(st.integers(0, 100))
        completion, thought = draw(st.integers(0, 10_000)), draw(st.integers(0, 100))
        usage = {"prompt_tokens": prompt + cached, "completion_tokens": completion,
                 "total_tokens": prompt + cached + completion,
                 "prompt_tokens_details": {"cached_tokens": cached},
                 "completion_tokens_details": {"reasoning_tokens": thought}}  # fmt: skip
        emit({"id": ident, "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
              "usage": usage})  # fmt: skip
        events.append(("usage", prompt, completion, cached, 0, thought))
    out.extend(b"data: [DONE]\r\n\r\n" if crlf else b"data: [DONE]\n\n")
    events.append(("end",))
    message: dict[str, object] = {"role": "assistant", "content": "".join(texts) or None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    answer: dict[str, Any] = {"id": ident, "object": "chat.completion", "created": 1, "model": "m",
                    "choices": [{"index": 0, "message": message, "finish_reason": raw_finish}]}  # fmt: skip
    if usage is not None:
        answer["usage"] = usage
    return ChatStream(bytes(out), tuple(events), answer)


# ------------------------------------------------------------------ requests both protocols express

# Non-empty text (Anthropic refuses empty text blocks), names, and JSON values.
request_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
names = st.text("abcdefgh_", min_size=1, max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
_arguments = st.dictionaries(names, json_values, max_size=3)
_schemas = st.dictionaries(names, st.sampled_from(["string", "integer", "boolean"]), max_size=3).map(
    lambda props: {"type": "object", "properties": {k: {"type": t} for k, t in props.items()}}
)


@st.composite
def _sampling(draw: st.DrawFn, stop_name: str) -> dict[str, object]:
    """The sampling fields both protocols express, each there or not."""
    out: dict[str, object] = {"max_tokens": draw(st.integers(1, 100_000))}
    for name, values in (
        ("temperature", st.floats(0, 1)),
        ("top_p", st.floats(0, 1)),
        ("top_k", st.integers(1, 500)),
        (stop_name, st.lists(request_text, min_size=1, max_size=5)),
    ):
        if draw(st.booleans()):
            out[name] = draw(values)
    return out


@st.composite
def messages_requests(draw: st.DrawFn) -> dict[str, object]:
    """An Anthropic Messages body on what OpenAI Chat Completions also expresses,
    in the form ``anthropic.chat_request`` writes: turns alternate, content is
    blocks (a user turn's tool results first), one system string, tools with a
    schema of type object, a tool_choice only with tools."""
    turns: list[dict[str, object]] = []
    calls: list[str] = []   # the last assistant turn's tool_use ids
    n = 0
    for k in range(draw(st.integers(1, 6))):
        blocks: list[dict[str, object]] = []
        if k % 2 == 0:
            blocks += [{"type": "tool_result", "tool_use_id": c, "content": draw(request_text)}
                       for c in calls]  # fmt: skip
            calls = []
            texts = draw(st.lists(request_text, min_size=0 if blocks else 1, max_size=2))
            blocks += [{"type": "text", "text": t} for t in texts]
            turns.append({"role": "user", "content": blocks})
        else:
            blocks += [{"type": "text", "text": t} for t in draw(st.lists(request_text, max_size=2))]
            for _ in range(draw(st.integers(0 if blocks else 1, 2))):
                n += 1
                calls.append(f"toolu_{n}")
                blocks.append({"type": "tool_use", "id": calls[-1], "name": draw(names),
                               "input": draw(_arguments)})  # fmt: skip
            turns.append({"role": "assistant", "content": blocks})
    body: dict[str, object] = {"model": "claude-x", "messages": turns, **draw(_sampling("stop_sequences"))}
    if draw(st.booleans()):
        body["system"] = draw(request_text)
    if draw(st.booleans()):
        body["metadata"] = {"user_id": draw(names)}
    tools = draw(st.lists(names, max_size=3, unique=True))
    if tools:
        body["tools"] = [{"name": t, "description": draw(request_text), "input_schema": draw(_schemas)}
                         for t in tools]  # fmt: skip
        kind = draw(st.sampled_from([None, "auto", "any", "none", "tool"]))
        if kind is not None:
            choice: dict[str, object] = {"type": kind}
            if choice["type"] == "tool":
                choice = {"type": "tool", "name": draw(st.sampled_from(tools))}
            if choice["type"] != "none" and draw(st.booleans()):
                choice = {**choice, "disable_parallel_tool_use": True}
            body["tool_choice"] = choice
    return body


@st.composite
def chat_requests(draw: st.DrawFn) -> dict[str, object]:
    """An OpenAI Chat Completions body on what Anthropic Messages also expresses,
    in the form ``messages.to_openai`` writes: one system message first, user and
    assistant turns alternating (an assistant's tool calls answered by tool
    messages right after it), tool arguments as compact JSON, max_tokens set."""
    messages: list[dict[str, object]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(request_text)})
    n = 0
    for k in range(draw(st.integers(1, 6))):
        if k % 2 == 0:
            parts = draw(st.lists(request_text, min_size=1, max_size=3))
            content: object = parts[0] if len(parts) == 1 else [{"type": "text", "text": t} for t in parts]
            messages.append({"role": "user", "content": content})
            continue
        calls = []
        for _ in range(draw(st.integers(0, 2))):
            n += 1
            args = draw(_arguments)
            arguments = orjson.dumps(args).decode() if args else "{}"
            calls.append({"id": f"call_{n}", "type": "function",
                          "function": {"name": draw(names), "arguments": arguments}})  # fmt: skip
        text = draw(st.none() | request_text) if calls else draw(request_text)
        message: dict[str, object] = {"role": "assistant", "content": text}
        if calls:
            message["tool_calls"] = calls
        messages.append(message)
        messages += [{"role": "tool", "tool_call_id": c["id"], "content": draw(request_text)} for c in calls]
    body: dict[str, object] = {"model": "gpt-x", "messages": messages, **draw(_sampling("stop"))}
    if draw(st.booleans()):
        body["user"] = draw(names)
    tools = draw(st.lists(names, max_size=3, unique=True))
    if tools:
        body["tools"] = [
            {"type": "function",
             "function": {"name": t, "description": draw(request_text), "parameters": draw(_schemas)}}
            for t in tools
        ]  # fmt: skip
        choice: object = draw(st.sampled_from([None, "auto", "required", "none", "function"]))
        if choice == "function":
            choice = {"type": "function", "function": {"name": draw(st.sampled_from(tools))}}
        if choice is not None:
            body["tool_choice"] = choice
            if choice != "none" and draw(st.booleans()):
                body["parallel_tool_calls"] = False
    return body
