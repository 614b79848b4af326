"""POST /v1/messages: the Anthropic Messages API in, any backend out.

Anthropic backends get the request as it is (``AnthropicAdapter.messages``,
``messages_stream``: only ``model`` rewritten). Every other backend speaks
OpenAI Chat Completions at the adapter edge: the request is converted once
(``gw._fast.messages.to_openai``, on the first such target), and the answer or
each streamed chunk converted back into Anthropic's shapes. Every error,
gw's own included, comes in Anthropic's envelope.
"""


from typing import Any, AsyncIterator

import orjson
from blacksheep import Request, Response

from .._fast.messages import InvalidAnswer, MessageStream, chat_to_message, error_event, message_id, to_openai
from ..config.tables import Provider, ProviderType
from ..errors import BadRequest, GatewayError, anthropic_error_body
from ..providers.base import invalid_answer, pump
from ..context import RequestContext
from ..routing import Bound
from ..wire import require
from .common import Call, proxy, stream_flag

# `system` messages inside `messages` are in the current API, next to the top-level `system`.
ROLES = ("user", "assistant", "system")


def validate_messages(body: dict[str, Any]) -> tuple[str, bool]:
    """The model and whether to stream; 400 for what no backend could take.

    ``max_tokens`` is required by Anthropic; gw accepts a request without it
    (Anthropic targets then get the target's ``default_max_tokens``, other
    backends their own default). 0 is Anthropic's cache pre-warming: passed on.
    """
    model = require(body, "model", str, "a string")
    messages = require(body, "messages", list, "an array")
    if not messages:
        raise BadRequest("'messages' must not be empty", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise BadRequest(
                f"'messages[{i}]' must be an object with 'role' 'user', 'assistant' or 'system'",
                param=f"messages[{i}].role",
            )
        if not isinstance(message.get("content"), (str, list)):
            raise BadRequest(
                f"'messages[{i}].content' must be a string or an array of content blocks",
                param=f"messages[{i}].content",
            )
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0):
        raise BadRequest("'max_tokens' must be a non-negative integer", param="max_tokens")
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise BadRequest("'system' must be a string or an array of text blocks", param="system")
    return model, stream_flag(body)


def stream_error_event(exc: GatewayError) -> bytes:
    """A failure after the stream started: one Anthropic ``error`` event (no [DONE] here)."""
    return error_event(anthropic_error_body(exc))


async def _as_messages(
    provider: Provider, events: AsyncIterator[bytes], converter: MessageStream, ctx: RequestContext
) -> AsyncIterator[bytes]:
    """An adapter's OpenAI chunk stream as Anthropic events.

    Nothing is yielded before the adapter's first chunk, so ``message_start``
    is the commit point a real answer would be.
    """
    try:
        async for out in pump(events, converter, provider, ctx):
            yield out
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def plan_messages(body: dict[str, Any]) -> Call:
    model, stream = validate_messages(body)
    stops = body.get("stop_sequences")
    stops = stops if isinstance(stops, list) else None
    as_chat: list[dict[str, Any]] = []  # converted once, on the first non-Anthropic target

    def chat_body() -> dict[str, Any]:
        if not as_chat:
            as_chat.append(to_openai(body))
        return as_chat[0]

    async def whole(bound: Bound, ctx: RequestContext) -> bytes:
        if bound.provider.type is ProviderType.ANTHROPIC:
            return await bound.adapter.messages(body, bound.target, ctx)  # type: ignore[attr-defined, no-any-return]
        data = await bound.adapter.chat(chat_body(), bound.target, ctx)
        try:
            # `model` is the name the client asked for: the upstream's means nothing to it.
            return chat_to_message(orjson.loads(data), message_id(), model, stops)
        except (InvalidAnswer, orjson.JSONDecodeError) as exc:
            raise invalid_answer(bound.provider, str(exc)) from None

    def start(bound: Bound, ctx: RequestContext) -> AsyncIterator[bytes]:
        if bound.provider.type is ProviderType.ANTHROPIC:
            return bound.adapter.messages_stream(body, bound.target, ctx)  # type: ignore[attr-defined, no-any-return]
        events = bound.adapter.chat_stream(chat_body(), bound.target, ctx)
        return _as_messages(bound.provider, events, MessageStream(message_id(), model, stops), ctx)

    return Call(model, stream, whole, start, stream_error_event)


async def messages(request: Request) -> Response:
    return await proxy(request, "messages", plan_messages, anthropic=True)


__all__ = ["messages", "plan_messages", "stream_error_event", "validate_messages"]
