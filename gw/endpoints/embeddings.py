"""POST /v1/embeddings: OpenAI embeddings, from openai, azure, gemini, ollama and echo backends."""


from typing import Any

from blacksheep import Request, Response

from ..context import RequestContext
from ..errors import BadRequest
from ..routing import Bound
from ..wire import require
from .common import Call, proxy


def _check_input(value: Any) -> None:
    if isinstance(value, str):
        return
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value) or all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            return
        if all(isinstance(v, list) and v and all(isinstance(t, int) for t in v) for v in value):
            return
    if value is None:
        raise BadRequest("'input' is required", param="input")
    raise BadRequest(
        "'input' must be a string, a non-empty array of strings, or token arrays", param="input"
    )


def plan_embeddings(body: dict[str, Any]) -> Call:
    model = require(body, "model", str, "a string")
    _check_input(body.get("input"))
    encoding = body.get("encoding_format")
    if encoding not in (None, "float", "base64"):
        raise BadRequest("'encoding_format' must be 'float' or 'base64'", param="encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1):
        raise BadRequest("'dimensions' must be a positive integer", param="dimensions")

    async def whole(bound: Bound, ctx: RequestContext) -> bytes:
        return await bound.adapter.embeddings(body, bound.target, ctx)

    def no_stream(bound: Bound, ctx: RequestContext) -> Any:
        raise AssertionError("embeddings never stream")

    return Call(model, False, whole, no_stream)


async def embeddings(request: Request) -> Response:
    return await proxy(request, "embeddings", plan_embeddings)


__all__ = ["embeddings", "plan_embeddings"]
