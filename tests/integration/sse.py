"""A reference SSE reader for the tests, independent of gw's own decoder."""

from __future__ import annotations

import re


def sse_data(text: str) -> list[str]:
    """The data of each complete event, by the SSE parsing rules."""
    events: list[str] = []
    data: list[str] = []
    for line in re.split(r"\r\n|\r|\n", text):
        if not line:
            if data:
                events.append("\n".join(data))
                data = []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            if field == "data":
                data.append(value[1:] if value.startswith(" ") else value)
    return events


def joined_tool_calls(chunks: list[dict]) -> list[dict]:
    """The tool calls of streamed chat chunks as a client joins them: by index,
    argument fragments appended; id, type and name come in a call's first delta only."""
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for delta in choice["delta"].get("tool_calls") or ():
                call = calls.get(delta["index"])
                if call is None:
                    calls[delta["index"]] = {**delta, "function": dict(delta["function"])}
                else:
                    assert set(delta) == {"index", "function"}, "id, type and name come in a call's first delta only"
                    call["function"]["arguments"] += delta["function"].get("arguments") or ""
    return [calls[i] for i in sorted(calls)]
