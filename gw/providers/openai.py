"""OpenAI Chat Completions and every server that speaks it (vLLM, LM Studio, ...).

Requests pass through with unknown fields untouched; only ``model`` is
rewritten. Streams are forwarded as the upstream's own event bytes; gw parses
each event only to learn what it must (usage, an error, the end).
"""

from __future__ import annotations

from typing import Any, AsyncIterator

import orjson

from .._fast.convert import OpenAIStream
from ..config.tables import Provider, Target
from ..context import RequestContext
from ..upstream import Upstream
from .base import invalid_answer, probe, pump, status_error


class OpenAIAdapter:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        # Sent with every request, set once on the clients.
        headers = [("content-type", "application/json"), *self.auth_headers(), *provider.headers]
        self.upstream = Upstream(provider, tuple(headers))
        # A cheap GET that tells whether the backend is up (routing.health_check).
        self.probe_url = f"{provider.base_url}/models"

    def auth_headers(self) -> list[tuple[str, str]]:
        key = self.provider.api_key
        return [("authorization", f"Bearer {key}")] if key else []

    def url(self, target: Target, endpoint: str) -> str:
        """Where ``endpoint`` (``chat/completions``, ``completions``, ``embeddings``) is."""
        return f"{self.provider.base_url}/{endpoint}"

    async def chat(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> bytes:
        return await self._whole("chat/completions", body, target, ctx)

    def chat_stream(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> AsyncIterator[bytes]:
        return self._stream("chat/completions", body, target, ctx)

    async def completions(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> bytes:
        """Legacy completions, passed through like chat."""
        return await self._whole("completions", body, target, ctx)

    def completions_stream(
        self, body: dict[str, Any], target: Target, ctx: RequestContext
    ) -> AsyncIterator[bytes]:
        return self._stream("completions", body, target, ctx)

    async def _whole(
        self, endpoint: str, body: dict[str, Any], target: Target, ctx: RequestContext, expect: str = "choices"
    ) -> bytes:
        """POST and check the answer is an object with an ``expect`` array."""
        # A copy: the client's body is reused if this target fails and another is tried.
        payload = {**body, "model": target.model}
        status, data, retry_after = await self.upstream.post(
            self.url(target, endpoint), (("x-request-id", ctx.request_id),), orjson.dumps(payload)
        )
        if status != 200:
            raise status_error(self.provider, status, data, retry_after)
        try:
            answer = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise invalid_answer(self.provider, "not JSON") from None
        if not isinstance(answer, dict) or not isinstance(answer.get(expect), list):
            raise invalid_answer(self.provider, f"no '{expect}' array")
        usage = answer.get("usage")
        if isinstance(usage, dict):
            ctx.usage = usage
        return data

    async def _stream(
        self, endpoint: str, body: dict[str, Any], target: Target, ctx: RequestContext
    ) -> AsyncIterator[bytes]:
        options = body.get("stream_options")
        client_wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        # Always ask for usage, so tokens are counted; the usage chunk is only
        # forwarded when the client asked for it.
        payload = {
            **body,
            "model": target.model,
            "stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True},
        }
        headers = (("accept", "text/event-stream"), ("x-request-id", ctx.request_id))
        async with self.upstream.stream(self.url(target, endpoint), headers, orjson.dumps(payload)) as resp:
            if resp.status != 200:
                raise status_error(self.provider, resp.status, await resp.read_all(), resp.retry_after)
            async for out in pump(resp, OpenAIStream(client_wants_usage), self.provider, ctx):
                yield out

    async def embeddings(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> bytes:
        return await self._whole("embeddings", body, target, ctx, expect="data")

    async def probe(self) -> None:
        await probe(self.upstream, self.probe_url)

    async def aclose(self) -> None:
        await self.upstream.aclose()
