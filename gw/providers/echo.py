"""The built-in ``echo`` backend: answers with the last user message.

It needs no key and no network, so every endpoint can be tried at once. It
streams the answer word by word, honours ``max_tokens`` (a word is a token)
and reports usage like a real backend. When the request forces a tool call
(``tool_choice`` "required" or a named function, and the last message is not a
tool result) it calls that tool (the first one for "required") with the
arguments ``{"text": <last user message>}``. Its embeddings are a deterministic
function of the text (SHA-256 based), ``dimensions`` long (default 16).
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from .._fast.events import Sink
from ..call import CHAT_FORMS, Call, Operation
from ..config.tables import Provider, Target
from ..context import Outcome


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return ""


def _limit(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def _answer(body: dict[str, Any]) -> tuple[list[str], bool, dict[str, int]]:
    """The words to answer with, whether max_tokens cut them, and the usage."""
    messages = body.get("messages") or []
    prompt_tokens = 0
    last_user = ""
    for message in messages:
        if isinstance(message, dict):
            text = _text_of(message.get("content"))
            prompt_tokens += len(text.split())
            if message.get("role") == "user":
                last_user = text
    words = last_user.split()
    limit = _limit(body)
    truncated = limit is not None and limit < len(words)
    if truncated:
        words = words[:limit]
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(words),
        "total_tokens": prompt_tokens + len(words),
    }
    return words, truncated, usage


def _forced_tool(body: dict[str, Any]) -> str | None:
    """The function a request forces echo to call, if any."""
    tools, choice, messages = body.get("tools"), body.get("tool_choice"), body.get("messages") or []
    if not isinstance(tools, list) or not tools:
        return None
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool":
        return None
    name = None
    if choice == "required":
        first = tools[0]
        name = first.get("function", {}).get("name") if isinstance(first, dict) else None
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
    return name if isinstance(name, str) else None


ECHO_DIMENSIONS = 16


def _vector(text: str, dims: int) -> list[float]:
    """A unit-length vector that depends only on ``text``."""
    digest = b""
    counter = 0
    while len(digest) < dims:
        digest += hashlib.sha256(counter.to_bytes(4, "little") + text.encode()).digest()
        counter += 1
    raw = [(b - 127.5) / 127.5 for b in digest[:dims]]
    norm = sum(x * x for x in raw) ** 0.5 or 1.0
    return [x / norm for x in raw]


class EchoAdapter:
    operations = CHAT_FORMS | {Operation.EMBEDDINGS}

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    async def answer(self, call: Call, target: Target, outcome: Outcome) -> bytes:
        if call.operation is Operation.EMBEDDINGS:
            return self._embeddings(call.body, target, outcome)
        encoder = call.whole_encoder(target.model)
        self._events(call, encoder, outcome)
        return orjson.dumps(encoder.answer())

    async def stream(self, call: Call, target: Target, outcome: Outcome) -> AsyncGenerator[bytes, None]:
        encoder = call.stream_encoder(target.model)
        # The whole answer is known at once: one read's worth, one send.
        self._events(call, encoder, outcome)
        yield encoder.take()

    def _events(self, call: Call, sink: Sink, outcome: Outcome) -> None:
        """The answer as the event core's events: the words, or the forced tool call."""
        body = call.chat()
        words, truncated, usage = _answer(body)
        outcome.usage = usage
        sink.start(f"chatcmpl-{call.info.id}")
        tool = _forced_tool(body)
        if tool is not None:
            call_id = f"call_{call.info.id[:24]}"
            sink.tool_start(0, 0, call_id, tool, None)
            sink.tool_args(0, 0, orjson.dumps({"text": " ".join(words)}).decode())
            finish = "tool_calls"
        else:
            last = len(words) - 1
            for i, word in enumerate(words):
                sink.text(0, word if i == last else word + " ")
            finish = "length" if truncated else "stop"
        sink.usage(usage["prompt_tokens"], usage["completion_tokens"], 0, 0, 0)
        sink.finish(0, finish, None)
        sink.end()

    def _embeddings(self, body: dict[str, Any], target: Target, outcome: Outcome) -> bytes:
        value = body["input"]
        inputs = [value] if isinstance(value, str) or isinstance(value[0], int) else value
        dims = body.get("dimensions") or ECHO_DIMENSIONS
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        tokens = 0
        for i, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += len(item) if isinstance(item, list) else len(text.split())
            vector = _vector(text, dims)
            embedding: Any = (
                base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector
            )
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        outcome.usage = {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}
        return orjson.dumps(
            {
                "object": "list",
                "data": data,
                "model": target.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def probe(self) -> None:
        return None  # built in: always up

    async def aclose(self) -> None:
        return None
