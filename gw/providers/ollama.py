"""Ollama's native API (``POST /api/chat``, ``/api/embed``; base_url ``http://localhost:11434``).

OpenAI Chat Completions in, ``/api/chat`` out (an NDJSON stream, or one JSON
object with ``"stream": false``), OpenAI answers back; OpenAI embeddings go to
``/api/embed``. The translation itself is ``gw/_fast/ollama.pyx``; here are
Ollama's URLs, its optional bearer key (Ollama behind a proxy, ollama.com) and
its error bodies (``{"error": "model \\"x\\" not found, try pulling it first"}``).

Ollama servers that should be reached through their OpenAI-compatible ``/v1``
instead are ``type: openai`` providers.
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterator

import orjson

from .._fast.ollama import (
    OllamaStream,
    chat_answer,
    chat_request,
    embed_answer,
    embed_request,
    embedding_inputs,
)
from ..config.tables import Provider, Target
from ..context import RequestContext
from ..errors import UpstreamStatus
from ..upstream import Upstream
from .base import invalid_answer, probe, pump, status_error


class OllamaAdapter:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        # Sent with every request, set once on the clients.
        headers = [("content-type", "application/json")]
        if provider.api_key:
            headers.append(("authorization", f"Bearer {provider.api_key}"))
        self.upstream = Upstream(provider, (*headers, *provider.headers))
        self.chat_url = f"{provider.base_url}/api/chat"
        self.embed_url = f"{provider.base_url}/api/embed"
        self.probe_url = f"{provider.base_url}/api/tags"

    async def chat(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> bytes:
        payload = orjson.dumps(chat_request(body, target.model, False))
        status, data, retry_after = await self.upstream.post(self.chat_url, (("x-request-id", ctx.request_id),), payload)
        answer = self._answer(status, data, retry_after)
        if not isinstance(answer.get("message"), dict):
            raise invalid_answer(self.provider, "no 'message' object")
        result = chat_answer(answer, f"chatcmpl-{ctx.request_id}", int(time.time()), target.model)
        ctx.usage = result["usage"]
        return orjson.dumps(result)

    async def chat_stream(
        self, body: dict[str, Any], target: Target, ctx: RequestContext
    ) -> AsyncIterator[bytes]:
        payload = orjson.dumps(chat_request(body, target.model, True))  # InvalidInput before any connection
        options = body.get("stream_options")
        wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        converter = OllamaStream(f"chatcmpl-{ctx.request_id}", int(time.time()), target.model, wants_usage)
        headers = (("accept", "application/x-ndjson"), ("x-request-id", ctx.request_id))
        async with self.upstream.stream(self.chat_url, headers, payload) as resp:
            if resp.status != 200:
                raise status_error(self.provider, resp.status, await resp.read_all(), resp.retry_after)
            async for out in pump(resp, converter, self.provider, ctx):
                yield out

    async def embeddings(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> bytes:
        texts = embedding_inputs(body)
        payload = orjson.dumps(embed_request(body, target.model))
        status, data, retry_after = await self.upstream.post(self.embed_url, (("x-request-id", ctx.request_id),), payload)
        answer = self._answer(status, data, retry_after)
        result = embed_answer(answer, len(texts), target.model, body.get("encoding_format") == "base64")
        if result is None:
            raise invalid_answer(self.provider, f"not {len(texts)} embeddings")
        tokens = result["usage"]["prompt_tokens"]
        ctx.usage = {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}
        return orjson.dumps(result)

    def _answer(self, status: int, data: bytes, retry_after: float | None = None) -> dict[str, Any]:
        """A whole answer's JSON object, or the error it is."""
        if status != 200:
            raise status_error(self.provider, status, data, retry_after)
        try:
            answer = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise invalid_answer(self.provider, "not JSON") from None
        if not isinstance(answer, dict):
            raise invalid_answer(self.provider, "not a JSON object")
        if answer.get("error") is not None:
            raise failed(self.provider, data)
        return answer

    async def probe(self) -> None:
        await probe(self.upstream, self.probe_url)

    async def aclose(self) -> None:
        await self.upstream.aclose()


def failed(provider: Provider, body: bytes) -> UpstreamStatus:
    """An ``{"error": ...}`` body that came with HTTP 200: a server-side failure (502)."""
    return status_error(provider, 502, body)
