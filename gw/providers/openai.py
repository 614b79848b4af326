"""OpenAI Chat Completions and every server that speaks it (vLLM, LM Studio, ...).

Requests pass through with unknown fields untouched; only ``model`` is
rewritten. Streams are forwarded as the upstream's own event bytes; gw parses
each event only to learn what it must (usage, an error, the end).
"""

from __future__ import annotations

from typing import Any, AsyncIterator

import orjson

from .._fast.convert import DONE_EVENT, OpenAIStream
from ..config.tables import Provider, Target
from ..context import RequestContext
from ..errors import UpstreamStatus, UpstreamUnavailable, redact
from ..upstream import Upstream
from .base import status_error


class OpenAIAdapter:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        # Sent with every request, set once on the clients.
        headers = [("content-type", "application/json"), *self.auth_headers(), *provider.headers]
        self.upstream = Upstream(provider, tuple(headers))

    def auth_headers(self) -> list[tuple[str, str]]:
        key = self.provider.api_key
        return [("authorization", f"Bearer {key}")] if key else []

    def chat_url(self, target: Target) -> str:
        return self.provider.base_url + "/chat/completions"

    async def chat(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> bytes:
        body["model"] = target.model
        status, data = await self.upstream.post(
            self.chat_url(target), (("x-request-id", ctx.request_id),), orjson.dumps(body)
        )
        if status != 200:
            raise status_error(self.provider, status, data)
        try:
            answer = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise self._garbage("its answer is not JSON") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
            raise self._garbage("its answer is not a chat.completion object")
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
        async with self.upstream.stream(self.chat_url(target), headers, orjson.dumps(body)) as resp:
            if resp.status != 200:
                raise status_error(self.provider, resp.status, await resp.read_all())
            watch = OpenAIStream(client_wants_usage)
            try:
                while (chunk := await resp.read()) is not None:
                    out = watch.feed(chunk)
                    if out:
                        yield out
                    if watch.done:
                        return
                    if watch.error is not None:
                        raise self._stream_error(watch.error)
                    if watch.invalid is not None:
                        raise self._garbage(watch.invalid)
                watch.close()
                if watch.invalid is not None:
                    raise self._garbage(watch.invalid)
                if not watch.finished:
                    raise UpstreamUnavailable(
                        f"provider '{self.provider.name}' ended the stream before it finished",
                        provider=self.provider.name,
                        retryable=True,
                    )
                # Some OpenAI-compatible servers end a finished stream without [DONE].
                yield DONE_EVENT
            finally:
                if watch.usage is not None:
                    ctx.usage = watch.usage

    def _garbage(self, what: str) -> UpstreamUnavailable:
        return UpstreamUnavailable(
            f"provider '{self.provider.name}' sent an invalid stream: {what}",
            provider=self.provider.name,
            retryable=True,
        )

    def _stream_error(self, error: object) -> UpstreamStatus:
        message = error.get("message") if isinstance(error, dict) else error
        text = redact(str(message or "unknown error"), (self.provider.api_key or "",))
        return UpstreamStatus(
            f"provider '{self.provider.name}' failed mid-stream: {text}",
            provider=self.provider.name,
            upstream_status=502,
            retryable=True,
        )

    async def aclose(self) -> None:
        await self.upstream.aclose()
