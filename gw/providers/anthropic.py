"""Anthropic's Messages API (``POST {base_url}/messages``, ``api.anthropic.com/v1``).

OpenAI Chat Completions in, Anthropic Messages out, OpenAI answers back; and,
for ``/v1/messages``, Anthropic requests passed through as they are
(``messages``, ``messages_stream``). The translation itself is
``gw/_fast/anthropic.pyx``; here are Anthropic's URL, its ``x-api-key`` and
``anthropic-version`` headers and its error bodies.
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterator

import orjson

from .._fast.anthropic import (
    AnthropicStream,
    MessagesWatch,
    chat_answer,
    chat_request,
    usage_from,
)
from ..config.describe import ANTHROPIC_DEFAULT_MAX_TOKENS
from ..config.tables import Provider, Target
from ..context import RequestContext
from ..errors import UpstreamStatus
from ..upstream import Upstream
from .base import invalid_answer, probe, pump, status_error, unsupported

DEFAULT_API_VERSION = "2023-06-01"


class AnthropicAdapter:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        # Sent with every request, set once on the clients.
        headers = [
            ("content-type", "application/json"),
            ("anthropic-version", provider.api_version or DEFAULT_API_VERSION),
        ]
        if provider.api_key:
            headers.append(("x-api-key", provider.api_key))
        self.upstream = Upstream(provider, (*headers, *provider.headers))
        self.url = f"{provider.base_url}/messages"
        self.probe_url = f"{provider.base_url}/models"

    # -- OpenAI Chat Completions in

    async def chat(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> bytes:
        payload = orjson.dumps(chat_request(body, target.model, max_tokens_of(target)))
        answer, _ = await self._post(payload, ctx)
        result = chat_answer(answer, int(time.time()), target.model)
        ctx.usage = result["usage"]
        return orjson.dumps(result)

    async def chat_stream(
        self, body: dict[str, Any], target: Target, ctx: RequestContext
    ) -> AsyncIterator[bytes]:
        # InvalidInput is raised here, before any connection.
        payload = orjson.dumps(chat_request(body, target.model, max_tokens_of(target), True))
        options = body.get("stream_options")
        wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        converter = AnthropicStream(int(time.time()), target.model, wants_usage)
        async for out in self._stream(payload, converter, ctx):
            yield out

    # -- Anthropic Messages in, passed through (POST /v1/messages)

    async def messages(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> bytes:
        """The Anthropic answer's bytes, unchanged, for an Anthropic request."""
        _, data = await self._post(orjson.dumps(native_request(body, target)), ctx)
        return data

    async def messages_stream(
        self, body: dict[str, Any], target: Target, ctx: RequestContext
    ) -> AsyncIterator[bytes]:
        """The upstream's Anthropic events, each as its own bytes, unchanged."""
        payload = orjson.dumps({**native_request(body, target), "stream": True})
        async for out in self._stream(payload, MessagesWatch(), ctx):
            yield out

    async def embeddings(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> bytes:
        raise unsupported(self.provider, "embeddings")

    async def probe(self) -> None:
        await probe(self.upstream, self.probe_url)

    async def aclose(self) -> None:
        await self.upstream.aclose()

    # -- the wire

    async def _post(self, payload: bytes, ctx: RequestContext) -> tuple[dict[str, Any], bytes]:
        """POST one request: the answer, checked to be an Anthropic message, and its bytes."""
        status, data, retry_after = await self.upstream.post(self.url, (("x-request-id", ctx.request_id),), payload)
        if status != 200:
            raise anthropic_error(self.provider, status, data, retry_after)
        try:
            answer = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise invalid_answer(self.provider, "not JSON") from None
        if not isinstance(answer, dict):
            raise invalid_answer(self.provider, "not a JSON object")
        if answer.get("type") == "error":
            raise anthropic_error(self.provider, 500, data)
        if not isinstance(answer.get("content"), list):
            raise invalid_answer(self.provider, "no 'content' array")
        ctx.usage = usage_from(answer.get("usage"))
        return answer, data

    async def _stream(
        self, payload: bytes, converter: AnthropicStream | MessagesWatch, ctx: RequestContext
    ) -> AsyncIterator[bytes]:
        headers = (("accept", "text/event-stream"), ("x-request-id", ctx.request_id))
        async with self.upstream.stream(self.url, headers, payload) as resp:
            if resp.status != 200:
                raise anthropic_error(self.provider, resp.status, await resp.read_all(), resp.retry_after)
            async for out in pump(resp, converter, self.provider, ctx):
                yield out


def max_tokens_of(target: Target) -> int:
    """What is sent as ``max_tokens`` when the client gives none (Anthropic requires it)."""
    return target.default_max_tokens or ANTHROPIC_DEFAULT_MAX_TOKENS


def native_request(body: dict[str, Any], target: Target) -> dict[str, Any]:
    """An Anthropic request for ``target``: ``model`` rewritten, ``max_tokens`` defaulted.

    A copy: the client's body is reused if this target fails and another is tried.
    """
    payload = {**body, "model": target.model}
    if payload.get("max_tokens") is None:
        payload["max_tokens"] = max_tokens_of(target)
    return payload


def anthropic_error(
    provider: Provider, status: int, body: bytes, retry_after: float | None = None
) -> UpstreamStatus:
    """An Anthropic error answer (``{"type": "error", "error": {"type", "message"}}``) as gw's error.

    The SPEC mapping is ``status_error``'s. Anthropic's 529 (``overloaded_error``)
    is a 503 by another number: it is retried where ``routing.retry_on`` has 503.
    """
    exc = status_error(provider, status, body, retry_after)
    if status == 529:
        exc.retry_key = 503
    return exc
