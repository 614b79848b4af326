"""OpenAI chat chunk events built the plain way (``orjson.dumps`` of the dict), for
the tests: the bytes gw's encoders must match, and upstream streams to decode."""

from __future__ import annotations

from typing import Any

import orjson


def chunk_event(
    id: str, created: int, model: str, delta: dict[str, Any], finish_reason: str | None = None, index: int = 0
) -> bytes:
    """One ``chat.completion.chunk`` event with one choice."""
    chunk = {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def usage_event(id: str, created: int, model: str, usage: dict[str, Any]) -> bytes:
    """The usage chunk (``"choices": []``) sent just before ``[DONE]``."""
    chunk = {"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [],
             "usage": usage}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"
