"""The HTTP edge: read a request body within limits, render answers and errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from blacksheep import Content, Request, Response
from blacksheep.contents import StreamedContent

from .context import Outcome, Protocol, RequestInfo
from .errors import (
    BadRequest,
    BodyTooLarge,
    GatewayError,
    MethodNotAllowed,
    RateLimited,
    anthropic_error_body,
    openai_error_body,
)

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
    # BlackSheep's stub types stream() as a coroutine; it is an async generator.
    async for chunk in request.stream():  # type: ignore[attr-defined]  # its stub types an async generator as a Generator
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


def require_texts(body: dict[str, Any], name: str, what: str, empty_token_arrays: bool = True) -> None:
    """``body[name]`` is a string, or a non-empty array of strings, of tokens or of token arrays
    (each non-empty unless ``empty_token_arrays``); else 400 saying it must be ``what``."""
    value = body.get(name)
    if isinstance(value, str):
        return
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value) or all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            return
        if all(
            isinstance(v, list) and (empty_token_arrays or v) and all(isinstance(t, int) for t in v)
            for v in value
        ):
            return
    if value is None:
        raise BadRequest(f"'{name}' is required", param=name)
    raise BadRequest(f"'{name}' must be {what}", param=name)


def stream_flag(body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be a boolean", param="stream")
    return stream


def headers_for(info: RequestInfo, outcome: Outcome) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-request-id", info.id.encode())]
    if outcome.provider:
        overhead_ms = max(0.0, time.perf_counter() - info.received - outcome.upstream_s) * 1000
        headers.append((b"x-gw-provider", outcome.provider.encode()))
        headers.append((b"x-gw-overhead-ms", b"%.3f" % overhead_ms))
        bound = outcome.bound
        if info.protocol is Protocol.RESPONSES and bound is not None and not bound.provider.responses_native:
            # converted for a chat backend: gw keeps no responses, whatever `store` said
            headers.append((b"x-gw-stored", b"false"))
    if outcome.token_count is not None:
        headers.append((b"x-gw-token-count", outcome.token_count.encode()))
    if outcome.cache is not None:
        headers.append((b"x-gw-cache", outcome.cache.encode()))
    return headers


def json_response(data: bytes, info: RequestInfo, outcome: Outcome, status: int = 200) -> Response:
    headers = headers_for(info, outcome)
    cost = outcome.cost_usd()
    if cost is not None:  # a whole answer's cost at its model's price (a stream's comes too late)
        headers.append((b"x-gw-cost-usd", b"%.8f" % cost))
    return Response(status, headers, Content(JSON, data))


def stream_response(
    info: RequestInfo, outcome: Outcome, body: Callable[[], AsyncIterator[bytes]]
) -> Response:
    headers = headers_for(info, outcome)
    headers.append((b"cache-control", b"no-cache"))
    return Response(200, headers, StreamedContent(EVENT_STREAM, body))


def error_response(exc: GatewayError, info: RequestInfo, outcome: Outcome) -> Response:
    """The one rendering of gw's errors: the envelope of the client's protocol, x-request-id,
    retry-after on a 429, ``allow`` on a 405."""
    outcome.error = exc.message
    headers = headers_for(info, outcome)
    if isinstance(exc, RateLimited) or exc.status == 429:
        retry_after = max(1, int((getattr(exc, "retry_after", None) or 1) + 0.999))
        headers.append((b"retry-after", str(retry_after).encode()))
    if isinstance(exc, MethodNotAllowed):
        headers.append((b"allow", exc.allow.encode()))
    body = anthropic_error_body(exc) if info.protocol is Protocol.ANTHROPIC else openai_error_body(exc)
    return Response(exc.status, headers, Content(JSON, body))


def plain_json(status: int, data: object) -> Response:
    """An answer of gw's own (health, admin): no request id."""
    return Response(status, None, Content(JSON, orjson.dumps(data)))
