"""The built-in ``echo`` backend: answers with the last user message.

It needs no key and no network, so every endpoint can be tried at once. It
streams the answer word by word, honours ``max_tokens`` (a word is a token)
and reports usage like a real backend. Its embeddings are a deterministic
function of the text (SHA-256 based), ``dimensions`` long (default 16).
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from typing import Any, AsyncIterator

import orjson

from .._fast.convert import DONE_EVENT, chunk_event, usage_event
from ..config.tables import Provider, Target
from ..context import RequestContext


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
    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    async def chat(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> bytes:
        words, truncated, usage = _answer(body)
        ctx.usage = usage
        return orjson.dumps(
            {
                "id": f"chatcmpl-{ctx.request_id}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": target.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": " ".join(words), "refusal": None},
                        "logprobs": None,
                        "finish_reason": "length" if truncated else "stop",
                    }
                ],
                "usage": usage,
            }
        )

    async def chat_stream(
        self, body: dict[str, Any], target: Target, ctx: RequestContext
    ) -> AsyncIterator[bytes]:
        words, truncated, usage = _answer(body)
        ctx.usage = usage
        options = body.get("stream_options")
        wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        chunk_id = f"chatcmpl-{ctx.request_id}"
        created = int(time.time())
        model = target.model
        yield chunk_event(chunk_id, created, model, {"role": "assistant", "content": ""})
        last = len(words) - 1
        for i, word in enumerate(words):
            yield chunk_event(chunk_id, created, model, {"content": word if i == last else word + " "})
        yield chunk_event(chunk_id, created, model, {}, "length" if truncated else "stop")
        if wants_usage:
            yield usage_event(chunk_id, created, model, usage)
        yield DONE_EVENT

    async def embeddings(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> bytes:
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
            embedding: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        ctx.usage = {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}
        return orjson.dumps(
            {
                "object": "list",
                "data": data,
                "model": target.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def aclose(self) -> None:
        return None
