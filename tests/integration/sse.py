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
