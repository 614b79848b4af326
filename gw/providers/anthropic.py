"""Anthropic's Messages API (``POST {base_url}/messages``, ``api.anthropic.com/v1``).

Anthropic clients (``/v1/messages``, ``/v1/messages/count_tokens``) pass
through: the request with only ``model`` rewritten (and ``max_tokens``
defaulted for messages), the client's ``anthropic-version`` and
``anthropic-beta`` headers over the provider's, the answer's bytes
unchanged. Every other client's request goes as its OpenAI chat form
converted to Anthropic's (``gw/_fast/anthropic.pyx``), and the answer is
decoded into the client's encoder. Here are Anthropic's URL, its
``x-api-key`` and ``anthropic-version`` headers and its error bodies.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson

from .._fast.anthropic import AnthropicDecoder, MessagesWatch, chat_request, read_answer, usage_from
from .._fast.events import Converter
from ..call import CHAT_FORMS, Call, Operation
from ..config.describe import ANTHROPIC_DEFAULT_MAX_TOKENS
from ..config.tables import Provider, Target
from ..context import Outcome
from ..errors import UpstreamStatus
from .base import HTTPAdapter, StreamConverter, invalid_answer, status_error, write_answer

DEFAULT_API_VERSION = "2023-06-01"


class AnthropicAdapter(HTTPAdapter):
    operations = CHAT_FORMS | {Operation.COUNT_TOKENS}

    def __init__(self, provider: Provider) -> None:
        super().__init__(provider)
        self.url = f"{provider.base_url}/messages"
        self.count_url = f"{provider.base_url}/messages/count_tokens"

    def auth_headers(self) -> list[tuple[str, str]]:
        headers = [("anthropic-version", self.provider.api_version or DEFAULT_API_VERSION)]
        if self.provider.api_key:
            headers.append(("x-api-key", self.provider.api_key))
        return headers

    def error(self, status: int, body: bytes, retry_after: float | None = None) -> UpstreamStatus:
        return anthropic_error(self.provider, status, body, retry_after)

    async def answer(self, call: Call, target: Target, outcome: Outcome) -> bytes:
        if call.operation is Operation.COUNT_TOKENS:  # Anthropic's own count, unchanged
            payload = orjson.dumps({**call.body, "model": target.model})
            answer, data = await self.post_json(self.count_url, call, payload, call.headers)
            if not isinstance(answer.get("input_tokens"), int):
                raise invalid_answer(self.provider, "no 'input_tokens' number")
            outcome.token_count = "exact"
            return data
        if call.operation is Operation.MESSAGES:  # the client's protocol: its bytes, unchanged
            payload = orjson.dumps(native_request(call.body, target))
            answer, data = await self._post(payload, call, call.headers)
            outcome.usage = usage_from(answer.get("usage"))
            return data
        # InvalidInput (400) is raised here, before any connection.
        payload = orjson.dumps(chat_request(call.chat(), target.model, max_tokens_of(target)))
        answer, _ = await self._post(payload, call)
        return write_answer(self.provider, call, target, outcome, lambda sink: read_answer(answer, sink))

    def stream(self, call: Call, target: Target, outcome: Outcome) -> AsyncGenerator[bytes, None]:
        converter: StreamConverter
        headers: tuple[tuple[str, str], ...] = ()
        if call.operation is Operation.MESSAGES:
            payload = orjson.dumps({**native_request(call.body, target), "stream": True})
            converter = MessagesWatch()
            headers = call.headers
        else:
            payload = orjson.dumps(chat_request(call.chat(), target.model, max_tokens_of(target), True))
            encoder = call.stream_encoder(target.model)
            converter = Converter(AnthropicDecoder(encoder), encoder)
        return self.stream_through(self.url, call, payload, converter, outcome, headers=headers)

    async def _post(
        self, payload: bytes, call: Call, headers: tuple[tuple[str, str], ...] = ()
    ) -> tuple[dict[str, Any], bytes]:
        """POST one request: the answer, checked to be an Anthropic message, and its bytes.
        ``headers``: the client's own, on pass-through."""
        answer, data = await self.post_json(self.url, call, payload, headers)
        if answer.get("type") == "error":
            raise anthropic_error(self.provider, 500, data)
        if not isinstance(answer.get("content"), list):
            raise invalid_answer(self.provider, "no 'content' array")
        return answer, data


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
