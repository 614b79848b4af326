"""POST /v1/completions: legacy completions.

OpenAI-type and Azure backends get the request as it is. For backends that
only chat, the prompt becomes one user message and the answer (or each
streamed chunk) a ``text_completion``.
"""


from typing import Any, AsyncIterator

import orjson
from blacksheep import Request, Response

from .._fast.completions import CompletionStream, chat_to_completion, completion_to_chat
from ..config.tables import ProviderType
from ..context import RequestContext
from ..errors import BadRequest
from ..routing import Bound
from ..wire import require
from .common import Call, proxy, stream_flag

# Provider types that serve /completions themselves.
NATIVE = frozenset({ProviderType.OPENAI, ProviderType.AZURE})


def _check_prompt(prompt: Any) -> None:
    if isinstance(prompt, str):
        return
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, str) for p in prompt) or all(
            isinstance(p, int) and not isinstance(p, bool) for p in prompt
        ):
            return
        if all(isinstance(p, list) and all(isinstance(t, int) for t in p) for p in prompt):
            return
    if prompt is None:
        raise BadRequest("'prompt' is required", param="prompt")
    raise BadRequest(
        "'prompt' must be a string, an array of strings, or an array of token arrays", param="prompt"
    )


async def _as_text_completions(events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    converter = CompletionStream()
    try:
        async for chunk in events:
            out = converter.feed(chunk)
            if out:
                yield out
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def plan_completions(body: dict[str, Any]) -> Call:
    model = require(body, "model", str, "a string")
    _check_prompt(body.get("prompt"))
    stream = stream_flag(body)
    as_chat: list[dict[str, Any]] = []  # converted once, on the first chat-only target

    def chat_body() -> dict[str, Any]:
        if not as_chat:
            as_chat.append(completion_to_chat(body))
        return as_chat[0]

    async def whole(bound: Bound, ctx: RequestContext) -> bytes:
        if bound.provider.type in NATIVE:
            return await bound.adapter.completions(body, bound.target, ctx)  # type: ignore[attr-defined, no-any-return]
        answer = orjson.loads(await bound.adapter.chat(chat_body(), bound.target, ctx))
        return orjson.dumps(chat_to_completion(answer))

    def start(bound: Bound, ctx: RequestContext) -> AsyncIterator[bytes]:
        if bound.provider.type in NATIVE:
            return bound.adapter.completions_stream(body, bound.target, ctx)  # type: ignore[attr-defined, no-any-return]
        return _as_text_completions(bound.adapter.chat_stream(chat_body(), bound.target, ctx))

    return Call(model, stream, whole, start)


async def completions(request: Request) -> Response:
    return await proxy(request, "completions", plan_completions)


__all__ = ["completions", "plan_completions"]
