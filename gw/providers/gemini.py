"""Google Gemini (the Generative Language API, ``generativelanguage.googleapis.com/v1beta``).

Every client's request goes as its OpenAI chat form converted to
``models/{m}:generateContent`` or ``:streamGenerateContent?alt=sse``; the
answer is decoded into the client's encoder; OpenAI embeddings
go to ``:batchEmbedContents``; a count_tokens request goes, converted the same
way, to ``:countTokens`` (as ``generateContentRequest``: system instruction
and tools counted too), its ``totalTokens`` back as ``{"input_tokens": n}``.
The translation itself is ``gw/_fast/gemini.pyx``; here are Gemini's URLs,
its ``x-goog-api-key`` header and its error bodies.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import orjson

from .._fast.events import Converter
from .._fast.gemini import (
    GeminiDecoder,
    block_reason,
    chat_request,
    embed_answer,
    embed_request,
    embedding_inputs,
    estimate_tokens,
    model_path,
    read_answer,
)
from ..call import CHAT_FORMS, Call, Operation
from ..config.tables import Provider, Target
from ..context import Outcome
from ..errors import UpstreamError, UpstreamStatus
from .base import HTTPAdapter, invalid_answer, status_error, write_answer

_RETRY_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


class _Urls:
    """A model's endpoints, built once per model name."""

    __slots__ = ("path", "generate", "stream", "embed", "count")

    def __init__(self, base_url: str, model: str) -> None:
        self.path = model_path(model)  # "models/gemini-2.5-flash"
        self.generate = f"{base_url}/{self.path}:generateContent"
        self.stream = f"{base_url}/{self.path}:streamGenerateContent?alt=sse"
        self.embed = f"{base_url}/{self.path}:batchEmbedContents"
        self.count = f"{base_url}/{self.path}:countTokens"


class GeminiAdapter(HTTPAdapter):
    operations = CHAT_FORMS | {Operation.EMBEDDINGS, Operation.COUNT_TOKENS}

    def __init__(self, provider: Provider) -> None:
        super().__init__(provider)
        self._urls: dict[str, _Urls] = {}

    def auth_headers(self) -> list[tuple[str, str]]:
        key = self.provider.api_key
        return [("x-goog-api-key", key)] if key else []

    def error(self, status: int, body: bytes, retry_after: float | None = None) -> UpstreamStatus:
        return gemini_error(self.provider, status, body, retry_after)

    def urls(self, target: Target) -> _Urls:
        urls = self._urls.get(target.model)
        if urls is None:
            urls = self._urls[target.model] = _Urls(self.provider.base_url, target.model)
        return urls

    async def answer(self, call: Call, target: Target, outcome: Outcome) -> bytes:
        if call.operation is Operation.EMBEDDINGS:
            return await self._embeddings(call, target, outcome)
        if call.operation is Operation.COUNT_TOKENS:
            return await self._count_tokens(call, target, outcome)
        payload = orjson.dumps(chat_request(call.chat()))  # InvalidInput before any connection
        answer, data = await self.post_json(self.urls(target).generate, call, payload)
        if isinstance(answer.get("error"), dict):
            raise gemini_error(self.provider, 502, data)
        reason = block_reason(answer)
        if reason is not None:
            raise blocked(self.provider, reason)
        if not isinstance(answer.get("candidates"), list):
            raise invalid_answer(self.provider, "no 'candidates' array")
        answer_id = f"chatcmpl-{call.info.id}"
        return write_answer(
            self.provider, call, target, outcome, lambda sink: read_answer(answer, sink, answer_id)
        )

    async def stream(self, call: Call, target: Target, outcome: Outcome) -> AsyncGenerator[bytes, None]:
        payload = orjson.dumps(chat_request(call.chat()))  # InvalidInput before any connection
        encoder = call.stream_encoder(target.model)
        decoder = GeminiDecoder(encoder, f"chatcmpl-{call.info.id}")
        converter = Converter(decoder, encoder)
        started = False
        async with aclosing(
            self.stream_through(self.urls(target).stream, call, payload, converter, outcome)
        ) as events:
            try:
                async for out in events:
                    started = True
                    yield out
            except UpstreamError:
                # A blocked prompt before anything went out is the client's 400,
                # like the non-streaming answer, not a failed stream.
                if decoder.blocked is not None and not started:
                    raise blocked(self.provider, decoder.blocked) from None
                raise

    async def _embeddings(self, call: Call, target: Target, outcome: Outcome) -> bytes:
        body = call.body
        texts = embedding_inputs(body)
        urls = self.urls(target)
        payload = orjson.dumps(embed_request(texts, urls.path, body.get("dimensions")))
        answer, _ = await self.post_json(urls.embed, call, payload)
        tokens = estimate_tokens(texts)
        result = embed_answer(
            answer, len(texts), target.model, body.get("encoding_format") == "base64", tokens
        )
        if result is None:
            raise invalid_answer(self.provider, f"not {len(texts)} embeddings")
        outcome.usage = {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}
        return orjson.dumps(result)

    async def _count_tokens(self, call: Call, target: Target, outcome: Outcome) -> bytes:
        urls = self.urls(target)
        request = {"model": urls.path, **chat_request(call.chat())}  # InvalidInput first
        answer, _ = await self.post_json(urls.count, call, orjson.dumps({"generateContentRequest": request}))
        total = answer.get("totalTokens", 0)  # proto3 JSON leaves a 0 out
        if not isinstance(total, int) or isinstance(total, bool):
            raise invalid_answer(self.provider, "no 'totalTokens' number")
        outcome.token_count = "exact"
        return orjson.dumps({"input_tokens": total})  # count_tokens' answer (Anthropic's)


def blocked(provider: Provider, reason: str) -> UpstreamStatus:
    """Gemini refused the prompt itself (``promptFeedback.blockReason``): the client's 400."""
    return UpstreamStatus(
        f"provider '{provider.name}' blocked the prompt: Gemini blockReason {reason}",
        provider=provider.name,
        upstream_status=400,
        retryable=False,
        upstream_type="invalid_request_error",
        code="content_filter",
    )


def gemini_error(
    provider: Provider, status: int, body: bytes, retry_after: float | None = None
) -> UpstreamStatus:
    """A Gemini error answer (``{"error": {"code", "message", "status", "details"}}``) as gw's error.

    Gemini says a wrong API key with a 400 (reason ``API_KEY_INVALID``): that is
    gw's credentials, so it is treated as a 401 (502 to the client, without the
    text). The error's ``code`` is Gemini's ``status`` (``RESOURCE_EXHAUSTED``);
    a 429's ``RetryInfo.retryDelay`` becomes ``retry_after``.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return status_error(provider, status, body, retry_after)
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return status_error(provider, status, body, retry_after)
    raw_details = error.get("details")
    details: list[Any] = raw_details if isinstance(raw_details, list) else []
    reasons = {d.get("reason") for d in details if isinstance(d, dict)}
    if status in (400, 403) and reasons & {"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED"}:
        return status_error(provider, 401, b"")
    message = error.get("message")
    code = error.get("status")
    exc = status_error(
        provider,
        status,
        orjson.dumps(
            {
                "error": {
                    "message": message if isinstance(message, str) else None,
                    "code": code if isinstance(code, str) else None,
                }
            }
        ),
        retry_after,
    )
    if status == 429:
        for detail in details:
            delay = detail.get("retryDelay") if isinstance(detail, dict) else None
            match = _RETRY_DELAY.match(delay) if isinstance(delay, str) else None
            if match:
                exc.retry_after = float(match.group(1))
                break
    return exc
