"""POST /v1/messages: the Anthropic Messages API in, any backend out.

Anthropic backends get the request as it is (only ``model`` rewritten) and
their answer goes back unchanged. Every other backend gets the request's OpenAI
chat form (``gw._fast.messages.to_openai``, read once, on the first such
target), and its decoder's events are written as Anthropic's message or
events (``MessageAnswer``, ``MessagesEvents``). Every error, gw's own
included, comes in Anthropic's envelope.
"""

from __future__ import annotations

from typing import Any

from .._fast.messages import MessageAnswer, MessagesEvents, message_id, to_openai
from ..call import Encoders, Operation
from ..errors import BadRequest
from ..pipeline import Parsed
from ..wire import require, stream_flag

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
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0
    ):
        raise BadRequest("'max_tokens' must be a non-negative integer", param="max_tokens")
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise BadRequest("'system' must be a string or an array of text blocks", param="system")
    return model, stream_flag(body)


def read_messages(body: dict[str, Any]) -> Parsed:
    model, stream = validate_messages(body)
    stops = body.get("stop_sequences")
    stops = stops if isinstance(stops, list) else None
    # `model` is the name the client asked for: the upstream's means nothing to it.
    encoders = Encoders(
        lambda _: MessageAnswer(message_id(), model, stops),
        lambda _: MessagesEvents(message_id(), model, stops),
    )
    return Parsed(Operation.MESSAGES, model, stream, encoders, lambda: to_openai(body))


__all__ = ["read_messages", "validate_messages"]
