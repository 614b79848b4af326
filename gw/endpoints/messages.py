"""POST /v1/messages and /v1/messages/count_tokens: the Anthropic Messages API in, any backend out.

Anthropic backends get the request as it is (only ``model`` rewritten) and
their answer goes back unchanged. Every other backend gets the request's OpenAI
chat form (``gw._fast.messages.to_openai``, read once, on the first such
target), and its decoder's events are written as Anthropic's message or
events (``MessageAnswer``, ``MessagesEvents``). Every error, gw's own
included, comes in Anthropic's envelope.

The client's ``anthropic-version`` and ``anthropic-beta`` headers go with the
request to Anthropic backends (over the provider's own); others ignore them.

count_tokens: backends that count (Anthropic, Gemini) are asked; for any
other target gw answers ``{"input_tokens": estimate_input_tokens(body)}``
itself, flagged ``x-gw-token-count: estimated``.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from .._fast.messages import MessageAnswer, MessagesEvents, message_id, to_openai
from ..call import Encoders, Operation
from ..errors import BadRequest
from ..pipeline import Parsed
from ..wire import require, stream_flag

# What an Anthropic backend gets of the client's headers (the client's value wins).
ANTHROPIC_HEADERS = ("anthropic-version", "anthropic-beta")

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
    return Parsed(
        Operation.MESSAGES, model, stream, encoders, lambda: to_openai(body), headers=ANTHROPIC_HEADERS
    )


def read_count_tokens(body: dict[str, Any]) -> Parsed:
    """A count_tokens body: a Messages request without ``max_tokens`` (never streamed)."""
    model, _ = validate_messages(body)
    return Parsed(
        Operation.COUNT_TOKENS,
        model,
        to_chat=lambda: to_openai(body),
        headers=ANTHROPIC_HEADERS,
        estimate=lambda: orjson.dumps({"input_tokens": estimate_input_tokens(body)}),
    )


# What an image or a non-text document counts: about what Anthropic counts for
# an image of the largest size it keeps (1.15 megapixels / 750).
MEDIA_TOKENS = 1600


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """gw's estimate of a Messages request's input tokens, for backends that cannot count.

    ceil(characters / 4), at least 1, over the text of ``system``, of every
    message (text, thinking, a tool call's name and input JSON, tool results)
    and of ``tools`` (each tool's JSON); each image or non-text document adds
    ``MEDIA_TOKENS``::

        estimate_input_tokens({"messages": [{"role": "user", "content": "Hello, world"}]}) == 3
    """
    chars, media = _chars(body.get("system"))
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            c, m = _chars(message.get("content"))
            chars, media = chars + c, media + m
    tools = body.get("tools")
    if isinstance(tools, list):
        chars += sum(len(orjson.dumps(tool)) for tool in tools)
    return max(1, math.ceil(chars / 4) + media * MEDIA_TOKENS)


def _chars(content: Any) -> tuple[int, int]:
    """(characters of text, images and documents) of a content: a string or blocks."""
    if isinstance(content, str):
        return len(content), 0
    if not isinstance(content, list):
        return 0, 0
    chars = media = 0
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind in ("text", "thinking"):
            text = block.get(kind)
            chars += len(text) if isinstance(text, str) else 0
        elif kind in ("tool_use", "server_tool_use"):
            name = block.get("name")
            chars += (len(name) if isinstance(name, str) else 0) + len(orjson.dumps(block.get("input")))
        elif kind in ("image", "document"):
            source = block.get("source")
            source = source if isinstance(source, dict) else {}
            data = source.get("data")
            if source.get("type") == "text" and isinstance(data, str):  # a plain-text document
                chars += len(data)
            elif source.get("type") == "content":
                c, m = _chars(source.get("content"))
                chars, media = chars + c, media + m
            else:
                media += 1
        elif kind != "redacted_thinking":  # tool results, search results, ...: their text
            c, m = _chars(block.get("content"))
            chars, media = chars + c, media + m
    return chars, media


__all__ = [
    "ANTHROPIC_HEADERS",
    "estimate_input_tokens",
    "read_count_tokens",
    "read_messages",
    "validate_messages",
]
