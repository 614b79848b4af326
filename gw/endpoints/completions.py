"""POST /v1/completions: legacy completions.

Backends that serve them (OpenAI, Azure) get the request as it is. For those
that only chat, the prompt becomes one user message (``completion_to_chat``)
and their answer's events are written as ``text_completion`` objects.
"""

from __future__ import annotations

from typing import Any

from .._fast.completions import CompletionAnswer, CompletionChunks, completion_to_chat
from ..call import Operation, openai_encoders, wants_usage
from ..pipeline import Parsed
from ..wire import require, require_texts, stream_flag

ENCODERS = openai_encoders(CompletionAnswer, CompletionChunks)


def read_completions(body: dict[str, Any]) -> Parsed:
    model = require(body, "model", str, "a string")
    require_texts(body, "prompt", "a string, an array of strings, or an array of token arrays")
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
