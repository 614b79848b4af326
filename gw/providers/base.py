"""What every provider adapter offers the endpoints, and the shared error reading."""

from __future__ import annotations

from typing import Any, AsyncIterator, Protocol

import orjson

from ..config.tables import Provider, Target
from ..context import RequestContext
from ..errors import UpstreamStatus, redact


class Adapter(Protocol):
    """Speaks one provider type. Requests and answers are OpenAI-shaped at this edge.

    ``chat`` returns the bytes of an OpenAI ``chat.completion`` object.
    ``chat_stream`` is an async generator of OpenAI SSE bytes (``data: ...\\n\\n``),
    the last being ``data: [DONE]\\n\\n``; it raises ``UpstreamError`` when the
    backend fails, before or after its first yield, and closes the upstream
    response when it is closed itself.
    Both may set ``ctx.usage``; neither keeps state between requests.
    """

    provider: Provider

    async def chat(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> bytes: ...

    def chat_stream(
        self, body: dict[str, Any], target: Target, ctx: RequestContext
    ) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


def status_error(provider: Provider, status: int, body: bytes) -> UpstreamStatus:
    """An upstream error status as gw's error, keeping the upstream's message.

    401/403 mean gw's own credentials are wrong: the client gets 502 and not
    the backend's text, which may quote part of the key.
    """
    if status in (401, 403):
        return UpstreamStatus(
            f"provider '{provider.name}' rejected the gateway's credentials (HTTP {status})",
            provider=provider.name,
            upstream_status=status,
            retryable=False,
        )
    message, err_type, param, code = _read_error(body)
    text = redact(message or f"HTTP {status}", (provider.api_key or "",))
    exc = UpstreamStatus(
        f"provider '{provider.name}' answered {status}: {text}",
        provider=provider.name,
        upstream_status=status,
        retryable=status == 429 or status >= 500,
        upstream_type=err_type if status in (400, 404, 422) else None,
        param=param,
        code=code,
    )
    return exc


def _read_error(body: bytes) -> tuple[str | None, str | None, str | None, str | None]:
    """message, type, param, code from an OpenAI-style (or similar) error body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body[:300].decode("utf-8", "replace").strip()
        return (text or None), None, None, None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        message = err.get("message")
        return (
            message if isinstance(message, str) else None,
            err.get("type") if isinstance(err.get("type"), str) else None,
            err.get("param") if isinstance(err.get("param"), str) else None,
            str(err["code"]) if err.get("code") is not None else None,
        )
    if isinstance(err, str):
        return err, None, None, None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"], None, None, None
    return None, None, None, None
