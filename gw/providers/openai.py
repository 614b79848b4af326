"""OpenAI Chat Completions and every server that speaks it (vLLM, LM Studio, ...).

OpenAI clients pass through: the request with only ``model`` rewritten, the
stream as the upstream's own event bytes (gw parses each event only to learn
what it must: usage, an error, the end). Anthropic clients (``/v1/messages``)
get the answer decoded (``gw/_fast/openai.pyx``) into their encoder.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import orjson

from .._fast.convert import OpenAIStream
from .._fast.events import Converter
from .._fast.openai import ChatDecoder, read_answer
from .._fast.responses_watch import ResponsesWatch, response_usage
from ..call import CHAT_FORMS, Call, Operation
from ..config.tables import Target
from ..context import Outcome
from ..errors import UnsupportedEndpoint
from .base import HTTPAdapter, StreamConverter, invalid_answer, write_answer

# The Responses API's side routes with a model (native backends only) -> their path.
_RESPONSES_ROUTES = {
    Operation.RESPONSES_COMPACT: "/compact",
    Operation.RESPONSES_INPUT_TOKENS: "/input_tokens",
}

# The client operation -> the backend endpoint it is sent to, as it is.
_NATIVE = {
    Operation.CHAT: "chat/completions",
    Operation.COMPLETIONS: "completions",
    Operation.EMBEDDINGS: "embeddings",
}


class OpenAIAdapter(HTTPAdapter):
    operations = CHAT_FORMS | {
        Operation.RESPONSES_COMPACT, Operation.RESPONSES_INPUT_TOKENS, Operation.EMBEDDINGS
    }

    def url(self, target: Target, endpoint: str) -> str:
        """Where ``endpoint`` (``chat/completions``, ``completions``, ``embeddings``) is."""
        return f"{self.provider.base_url}/{endpoint}"

    def responses_url(self) -> str:
        """Where the native Responses API is."""
        return f"{self.provider.base_url}/responses"

    def _native_responses(self, call: Call) -> bool:
        return call.operation is Operation.RESPONSES and self.provider.responses_native

    async def answer(self, call: Call, target: Target, outcome: Outcome) -> bytes:
        if self._native_responses(call):  # the client's protocol: its bytes, unchanged
            body = {**call.body, "model": target.model}
            answer, data = await self.post_json(self.responses_url(), call, orjson.dumps(body))
            if not isinstance(answer.get("output"), list):
                raise invalid_answer(self.provider, "no 'output' array")
            outcome.usage = response_usage(answer.get("usage"))
            return data
        route = _RESPONSES_ROUTES.get(call.operation)
        if route is not None:
            if not self.provider.responses_native:
                raise UnsupportedEndpoint(
                    f"provider '{self.provider.name}' answers /v1/responses by conversion "
                    f"(responses: convert): /v1/responses{route} needs a native Responses API"
                )
            body = {**call.body, "model": target.model}
            _, data = await self.post_json(self.responses_url() + route, call, orjson.dumps(body))
            return data
        native = _NATIVE.get(call.operation)
        # A copy: the client's body is reused if this target fails and another is tried.
        body = {**(call.body if native is not None else call.chat()), "model": target.model}
        answer, data = await self.post_json(
            self.url(target, native or "chat/completions"), call, orjson.dumps(body)
        )
        expect = "data" if call.operation is Operation.EMBEDDINGS else "choices"
        if not isinstance(answer.get(expect), list):
            raise invalid_answer(self.provider, f"no '{expect}' array")
        if native is not None:  # the client's protocol: its bytes, unchanged
            usage = answer.get("usage")
            if isinstance(usage, dict):
                outcome.usage = usage
            return data
        return write_answer(self.provider, call, target, outcome, lambda sink: read_answer(answer, sink))

    def stream(self, call: Call, target: Target, outcome: Outcome) -> AsyncGenerator[bytes, None]:
        if self._native_responses(call):
            request = orjson.dumps({**call.body, "model": target.model, "stream": True})
            return self.stream_through(self.responses_url(), call, request, ResponsesWatch(), outcome)
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
        return self.stream_through(self.url(target, native), call, orjson.dumps(payload), converter, outcome)

    async def stored(self, method: str, path: str, call: Call) -> tuple[int, bytes]:
        """A stored response's route (``{id}``, ``{id}/cancel``, ``{id}/input_items``):
        the backend's status and body. 401/403 and 5xx raise."""
        headers = (("x-request-id", call.info.id),)
        status, data, retry_after = await self.upstream.request(
            method, f"{self.responses_url()}/{path}", headers, b"{}" if method == "POST" else None
        )
        if status in (401, 403) or status >= 500:
            raise self.error(status, data, retry_after)
        return status, data
