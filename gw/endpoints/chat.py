"""POST /v1/chat/completions: OpenAI Chat Completions, streaming and not."""

from __future__ import annotations

from typing import Any

from .._fast.chat import ChatAnswer, ChatChunks
from ..call import Operation, openai_encoders, wants_usage
from ..errors import BadRequest
from ..pipeline import Parsed
from ..wire import require, stream_flag


def validate_chat(body: dict[str, Any]) -> tuple[str, bool]:
    """The model and whether to stream; 400 for what no backend could take."""
    model = require(body, "model", str, "a string")
    messages = require(body, "messages", list, "an array")
    if not messages:
        raise BadRequest("'messages' must not be empty", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(
                f"'messages[{i}]' must be an object with a string 'role'", param=f"messages[{i}]"
            )
    return model, stream_flag(body)


# The chat encoders, without and with the usage chunk.
ENCODERS = openai_encoders(ChatAnswer, ChatChunks)


def read_chat(body: dict[str, Any]) -> Parsed:
    model, stream = validate_chat(body)
    include_usage = wants_usage(body)
    return Parsed(Operation.CHAT, model, stream, ENCODERS[include_usage], None, include_usage)


__all__ = ["ENCODERS", "read_chat", "validate_chat"]
