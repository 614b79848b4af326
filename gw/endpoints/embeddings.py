"""POST /v1/embeddings: OpenAI embeddings, from openai, azure, gemini, ollama and echo backends."""

from __future__ import annotations

from typing import Any

from ..call import Operation
from ..errors import BadRequest
from ..pipeline import Parsed
from ..wire import require, require_texts


def read_embeddings(body: dict[str, Any]) -> Parsed:
    model = require(body, "model", str, "a string")
    require_texts(
        body, "input", "a string, a non-empty array of strings, or token arrays", empty_token_arrays=False
    )
    encoding = body.get("encoding_format")
    if encoding not in (None, "float", "base64"):
        raise BadRequest("'encoding_format' must be 'float' or 'base64'", param="encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1
    ):
        raise BadRequest("'dimensions' must be a positive integer", param="dimensions")
    return Parsed(Operation.EMBEDDINGS, model)


__all__ = ["read_embeddings"]
