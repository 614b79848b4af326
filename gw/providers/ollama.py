"""Ollama's native API (``POST /api/chat``, ``/api/embed``; base_url ``http://localhost:11434``).

Every client's request goes as its OpenAI chat form converted to ``/api/chat``
(an NDJSON stream, or one JSON object with ``"stream": false``); the answer
is decoded into the client's encoder; OpenAI embeddings go to
``/api/embed``. The translation itself is ``gw/_fast/ollama.pyx``; here are
Ollama's URLs, its optional bearer key (Ollama behind a proxy, ollama.com) and
its error bodies (``{"error": "model \\"x\\" not found, try pulling it first"}``).

Ollama servers that should be reached through their OpenAI-compatible ``/v1``
instead are ``type: openai`` providers.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson

from .._fast.events import Converter
from .._fast.ollama import (
    OllamaDecoder,
    chat_request,
    embed_answer,
    embed_request,
    embedding_inputs,
    read_answer,
)
from ..call import CHAT_FORMS, Call, Operation
from ..config.tables import Provider, Target
from ..context import Outcome
from ..errors import UpstreamStatus
from .base import HTTPAdapter, invalid_answer, status_error, write_answer


class OllamaAdapter(HTTPAdapter):
    operations = CHAT_FORMS | {Operation.EMBEDDINGS}
    probe_path = "/api/tags"

    def __init__(self, provider: Provider) -> None:
        super().__init__(provider)  # an optional bearer key: Ollama behind a proxy, ollama.com
        self.chat_url = f"{provider.base_url}/api/chat"
        self.embed_url = f"{provider.base_url}/api/embed"

    async def answer(self, call: Call, target: Target, outcome: Outcome) -> bytes:
        if call.operation is Operation.EMBEDDINGS:
            return await self._embeddings(call, target, outcome)
        payload = orjson.dumps(chat_request(call.chat(), target.model, False))  # InvalidInput first
        answer = await self._post(self.chat_url, call, payload)
        if not isinstance(answer.get("message"), dict):
            raise invalid_answer(self.provider, "no 'message' object")
        answer_id = f"chatcmpl-{call.info.id}"
        return write_answer(
            self.provider, call, target, outcome, lambda sink: read_answer(answer, sink, answer_id)
        )

    def stream(self, call: Call, target: Target, outcome: Outcome) -> AsyncGenerator[bytes, None]:
        payload = orjson.dumps(chat_request(call.chat(), target.model, True))  # InvalidInput first
        encoder = call.stream_encoder(target.model)
        converter = Converter(OllamaDecoder(encoder, f"chatcmpl-{call.info.id}"), encoder)
        return self.stream_through(self.chat_url, call, payload, converter, outcome, "application/x-ndjson")

    async def _embeddings(self, call: Call, target: Target, outcome: Outcome) -> bytes:
        body = call.body
        texts = embedding_inputs(body)
        answer = await self._post(self.embed_url, call, orjson.dumps(embed_request(body, target.model)))
        result = embed_answer(answer, len(texts), target.model, body.get("encoding_format") == "base64")
        if result is None:
            raise invalid_answer(self.provider, f"not {len(texts)} embeddings")
        tokens = result["usage"]["prompt_tokens"]
        outcome.usage = {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}
        return orjson.dumps(result)

    async def _post(self, url: str, call: Call, payload: bytes) -> dict[str, Any]:
        """A whole answer's JSON object, or the error it is."""
        answer, data = await self.post_json(url, call, payload)
        if answer.get("error") is not None:
            raise failed(self.provider, data)
        return answer


def failed(provider: Provider, body: bytes) -> UpstreamStatus:
    """An ``{"error": ...}`` body that came with HTTP 200: a server-side failure (502)."""
    return status_error(provider, 502, body)
