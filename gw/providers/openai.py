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
from .base import invalid_answer, pump, status_error


class OpenAIAdapter:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        # Sent with every request, set once on the clients.
        headers = [("content-type", "application/json"), *self.auth_headers(), *provider.headers]
        self.upstream = Upstream(provider, tuple(headers))

    def auth_headers(self) -> list[tuple[str, str]]:
        key = self.provider.api_key
        return [("authorization", f"Bearer {key}")] if key else []

    def url(self, target: Target, endpoint: str) -> str:
        """Where ``endpoint`` (``chat/completions``, ``completions``, ``embeddings``) is."""
        return f"{self.provider.base_url}/{endpoint}"

    async def chat(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> bytes:
        body["model"] = target.model
        status, data = await self.upstream.post(
            self.url(target, "chat/completions"), (("x-request-id", ctx.request_id),), orjson.dumps(body)
        )
        if status != 200:
            raise status_error(self.provider, status, data)
        try:
            answer = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise invalid_answer(self.provider, "not JSON") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
            raise invalid_answer(self.provider, "not a chat.completion object")
        usage = answer.get("usage")
        if isinstance(usage, dict):
            ctx.usage = usage
        return data

    async def chat_stream(
        self, body: dict[str, Any], target: Target, ctx: RequestContext
    ) -> AsyncIterator[bytes]:
        body["model"] = target.model
        options = body.get("stream_options")
        client_wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        # Always ask for usage, so tokens are counted; the usage chunk is only
        # forwarded when the client asked for it.
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        headers = (("accept", "text/event-stream"), ("x-request-id", ctx.request_id))
        async with self.upstream.stream(self.url(target, "chat/completions"), headers, orjson.dumps(body)) as resp:
            if resp.status != 200:
                raise status_error(self.provider, resp.status, await resp.read_all())
            async for out in pump(resp, OpenAIStream(client_wants_usage), self.provider, ctx):
                yield out

    async def embeddings(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> bytes:
        body["model"] = target.model
        status, data = await self.upstream.post(
            self.url(target, "embeddings"), (("x-request-id", ctx.request_id),), orjson.dumps(body)
        )
        if status != 200:
            raise status_error(self.provider, status, data)
        try:
            answer = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise invalid_answer(self.provider, "not JSON") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
            raise invalid_answer(self.provider, "not an embeddings list")
        usage = answer.get("usage")
        if isinstance(usage, dict):
            ctx.usage = usage
        return data

    async def aclose(self) -> None:
        await self.upstream.aclose()
