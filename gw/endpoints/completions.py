"""POST /v1/completions: legacy completions.

Backends that serve them (OpenAI, Azure) get the request as it is. For those
that only chat, the prompt becomes one user message (``completion_to_chat``)
and their answer's events are written as ``text_completion`` objects.
"""

from __future__ import annotations

from typing import Any

from .._fast.completions import CompletionAnswer, CompletionChunks, completion_to_chat
from ..call import Operation, openai_encoders, wants_usage
from ..errors import BadRequest
from ..pipeline import Parsed
from ..wire import require, stream_flag


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


ENCODERS = openai_encoders(CompletionAnswer, CompletionChunks)


def read_completions(body: dict[str, Any]) -> Parsed:
    model = require(body, "model", str, "a string")
    _check_prompt(body.get("prompt"))
    include_usage = wants_usage(body)
    return Parsed(
        Operation.COMPLETIONS,
        model,
        stream_flag(body),
        ENCODERS[include_usage],
        lambda: completion_to_chat(body),
        include_usage,
    )


__all__ = ["read_completions"]
