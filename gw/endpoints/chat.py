"""POST /v1/chat/completions: OpenAI Chat Completions, streaming and not."""


from typing import Any

from blacksheep import Request, Response

from ..errors import BadRequest
from ..wire import require
from .common import Call, proxy, stream_flag


def validate_chat(body: dict[str, Any]) -> tuple[str, bool]:
    """The model and whether to stream; 400 for what no backend could take."""
    model = require(body, "model", str, "a string")
    messages = require(body, "messages", list, "an array")
    if not messages:
        raise BadRequest("'messages' must not be empty", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"'messages[{i}]' must be an object with a string 'role'", param=f"messages[{i}]")
    return model, stream_flag(body)


def plan_chat(body: dict[str, Any]) -> Call:
    model, stream = validate_chat(body)
    return Call(
        model,
        stream,
        lambda bound, ctx: bound.adapter.chat(body, bound.target, ctx),
        lambda bound, ctx: bound.adapter.chat_stream(body, bound.target, ctx),
    )


async def chat_completions(request: Request) -> Response:
    return await proxy(request, "chat", plan_chat)


__all__ = ["chat_completions", "plan_chat", "validate_chat"]
