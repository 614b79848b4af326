"""OpenAI Chat Completions and every server that speaks it (vLLM, LM Studio, ...).

OpenAI clients pass through: the request with only ``model`` rewritten, the
stream as the upstream's own event bytes (gw parses each event only to learn
what it must: usage, an error, the end). Anthropic clients (``/v1/messages``)
get the answer decoded (``gw/_fast/openai.pyx``) into their encoder.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson

from .._fast.convert import OpenAIStream
from .._fast.events import Converter
from .._fast.openai import ChatDecoder, InvalidAnswer, read_answer
from ..call import Call, Operation
from ..config.tables import Provider, Target
from ..context import Outcome
from ..upstream import Upstream
from .base import StreamConverter, encoded, invalid_answer, probe, pump, status_error

# The client operation -> the backend endpoint it is sent to, as it is.
_NATIVE = {
    Operation.CHAT: "chat/completions",
    Operation.COMPLETIONS: "completions",
    Operation.EMBEDDINGS: "embeddings",
}


class OpenAIAdapter:
    operations = frozenset({Operation.CHAT, Operation.COMPLETIONS, Operation.MESSAGES, Operation.EMBEDDINGS})

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

    async def answer(self, call: Call, target: Target, outcome: Outcome) -> bytes:
        native = _NATIVE.get(call.operation)
        if native is not None:  # the client's protocol: its bytes, unchanged
            expect = "data" if call.operation is Operation.EMBEDDINGS else "choices"
            data, answer = await self._post(native, call.body, target, call, expect)
            usage = answer.get("usage")
            if isinstance(usage, dict):
                outcome.usage = usage
            return data
        _, answer = await self._post("chat/completions", call.chat(), target, call, "choices")
        encoder = call.whole_encoder(target.model)
        try:
            read_answer(answer, encoder)
        except InvalidAnswer as exc:
            raise invalid_answer(self.provider, str(exc)) from None
        outcome.usage = encoder.openai_usage()
        return encoded(self.provider, encoder)

    async def stream(self, call: Call, target: Target, outcome: Outcome) -> AsyncGenerator[bytes, None]:
        native = _NATIVE.get(call.operation)
        converter: StreamConverter
        if native is not None:
            body = call.body
            converter = OpenAIStream(call.include_usage)
        else:
            native, body = "chat/completions", call.chat()
            encoder = call.stream_encoder(target.model)
            converter = Converter(ChatDecoder(encoder), encoder)
        options = body.get("stream_options")
        # Always ask for usage, so tokens are counted; the usage chunk is only
        # forwarded when the client asked for it.
        payload = {
            **body,
            "model": target.model,
            "stream": True,
            "stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True},
        }
        headers = (("accept", "text/event-stream"), ("x-request-id", call.info.id))
        async with self.upstream.stream(self.url(target, native), headers, orjson.dumps(payload)) as resp:
            if resp.status != 200:
                raise status_error(self.provider, resp.status, await resp.read_all(), resp.retry_after)
            async for out in pump(resp, converter, self.provider, outcome):
                yield out

    async def _post(
        self, endpoint: str, body: dict[str, Any], target: Target, call: Call, expect: str
    ) -> tuple[bytes, dict[str, Any]]:
        """POST and check the answer is an object with an ``expect`` array."""
        # A copy: the client's body is reused if this target fails and another is tried.
        payload = {**body, "model": target.model}
        status, data, retry_after = await self.upstream.post(
            self.url(target, endpoint), (("x-request-id", call.info.id),), orjson.dumps(payload)
        )
        if status != 200:
            raise status_error(self.provider, status, data, retry_after)
        try:
            answer = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise invalid_answer(self.provider, "not JSON") from None
        if not isinstance(answer, dict) or not isinstance(answer.get(expect), list):
            raise invalid_answer(self.provider, f"no '{expect}' array")
        return data, answer

    async def probe(self) -> None:
        await probe(self.upstream, self.probe_url)

    async def aclose(self) -> None:
        await self.upstream.aclose()
