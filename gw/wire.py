"""The HTTP edge: read a request body within limits, render answers and errors."""

from __future__ import annotations

from typing import Any

import orjson
from blacksheep import Content, Request, Response
from blacksheep.contents import StreamedContent

from .context import RequestContext
from .errors import BadRequest, BodyTooLarge, GatewayError, RateLimited, anthropic_error_body, openai_error_body

JSON = b"application/json"
EVENT_STREAM = b"text/event-stream"


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing more than ``limit`` bytes without reading them all."""
    length = request.get_first_header(b"content-length")
    if length is not None:
        try:
            size = int(length)
        except ValueError:
            raise BadRequest("invalid content-length header") from None
        if size > limit:
            raise BodyTooLarge(f"request body of {size} bytes is over the limit of {limit} bytes")
        return await request.read() or b""
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"request body is over the limit of {limit} bytes")
            parts.append(chunk)
    return b"".join(parts)


def parse_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise BadRequest("request body is empty: expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object, got {_json_type(body)}")
    return body


def _json_type(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def require(body: dict[str, Any], name: str, kind: type, what: str) -> Any:
    value = body.get(name)
    if value is None:
        raise BadRequest(f"'{name}' is required", param=name)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise BadRequest(f"'{name}' must be {what}, got {_json_type(value)}", param=name)
    return value


def headers_for(ctx: RequestContext) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-request-id", ctx.request_id.encode())]
    if ctx.provider:
        overhead_ms = max(0.0, ctx.elapsed() - ctx.upstream_s) * 1000
        headers.append((b"x-gw-provider", ctx.provider.encode()))
        headers.append((b"x-gw-overhead-ms", b"%.3f" % overhead_ms))
    return headers


def json_response(data: bytes, ctx: RequestContext, status: int = 200) -> Response:
    ctx.status = status
    return Response(status, headers_for(ctx), Content(JSON, data))


def stream_response(ctx: RequestContext, body: Any) -> Response:
    ctx.status = 200
    headers = headers_for(ctx)
    headers.append((b"cache-control", b"no-cache"))
    return Response(200, headers, StreamedContent(EVENT_STREAM, body))


def error_response(exc: GatewayError, ctx: RequestContext, anthropic: bool = False) -> Response:
    ctx.status = exc.status
    ctx.error = exc.message
    headers = headers_for(ctx)
    if isinstance(exc, RateLimited) or exc.status == 429:
        retry_after = max(1, int((getattr(exc, "retry_after", None) or 1) + 0.999))
        headers.append((b"retry-after", str(retry_after).encode()))
    body = anthropic_error_body(exc) if anthropic else openai_error_body(exc)
    return Response(exc.status, headers, Content(JSON, body))
