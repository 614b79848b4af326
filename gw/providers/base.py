"""What every provider adapter offers the endpoints, and what they share:
error reading, the stream pump and the errors of a failed stream."""

from __future__ import annotations

from typing import Any, AsyncIterator, Protocol

import orjson

from ..config.tables import Provider, Target
from ..context import RequestContext
from ..errors import UnsupportedEndpoint, UpstreamStatus, UpstreamUnavailable, redact
from ..upstream import StreamResponse, Upstream


class Adapter(Protocol):
    """Speaks one provider type. Requests and answers are OpenAI-shaped at this edge.

    ``chat`` returns the bytes of an OpenAI ``chat.completion`` object.
    ``chat_stream`` is an async generator of OpenAI SSE bytes (``data: ...\\n\\n``),
    the last being ``data: [DONE]\\n\\n``; it raises ``UpstreamError`` when the
    backend fails, before or after its first yield, and closes the upstream
    response when it is closed itself. It honours ``stream_options.include_usage``.
    ``embeddings`` returns the bytes of an OpenAI embeddings ``list`` object, or
    raises ``UnsupportedEndpoint`` (``unsupported``).
    All of them set ``ctx.usage`` (OpenAI-shaped) when the backend reports it;
    none keeps state between requests. A request the backend's protocol cannot
    express raises ``InvalidInput`` (400).
    """

    provider: Provider

    async def chat(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> bytes: ...

    def chat_stream(
        self, body: dict[str, Any], target: Target, ctx: RequestContext
    ) -> AsyncIterator[bytes]: ...

    async def embeddings(self, body: dict[str, Any], target: Target, ctx: RequestContext) -> bytes: ...

    async def probe(self) -> None:
        """A cheap request that raises ``UpstreamError`` when the backend is down (health checks)."""

    async def aclose(self) -> None: ...


class StreamConverter(Protocol):
    """Turns a backend's stream bytes into the client's, chunk by chunk (``gw._fast``).

    ``feed`` returns what is ready to send (maybe b""); ``close`` is called at
    the upstream's EOF and returns the last bytes. ``done``: the stream ended
    properly (its terminator was produced). ``error``: the backend's own error
    object, sent after HTTP 200. ``invalid``: why the bytes are not the protocol.
    ``usage``: the OpenAI-shaped usage once known.
    """

    done: bool
    error: Any
    invalid: str | None
    usage: dict[str, Any] | None

    def feed(self, chunk: bytes) -> bytes: ...

    def close(self) -> bytes: ...


async def pump(
    source: StreamResponse | AsyncIterator[bytes],
    converter: StreamConverter,
    provider: Provider,
    ctx: RequestContext,
) -> AsyncIterator[bytes]:
    """Relay a stream through ``converter``: an upstream response, or another
    adapter's stream when converting for the client (``/v1/messages``).

    Whatever the converter produced before a failure is yielded first; then the
    failure is raised as an ``UpstreamError`` (error event after HTTP 200,
    invalid bytes, or an end before the stream finished).
    """
    try:
        async for chunk in source:
            out = converter.feed(chunk)
            if out:
                yield out
            if converter.done:
                return
            _raise_if_failed(converter, provider)
        out = converter.close()
        if out:
            yield out
        _raise_if_failed(converter, provider)
        if not converter.done:
            raise UpstreamUnavailable(
                f"provider '{provider.name}' ended the stream before it finished",
                provider=provider.name,
                retryable=True,
            )
    finally:
        if converter.usage is not None:
            ctx.usage = converter.usage


def _raise_if_failed(converter: StreamConverter, provider: Provider) -> None:
    if converter.error is not None:
        raise stream_error(provider, converter.error)
    if converter.invalid is not None:
        raise invalid_stream(provider, converter.invalid)


def invalid_stream(provider: Provider, what: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        f"provider '{provider.name}' sent an invalid stream: {what}",
        provider=provider.name,
        retryable=True,
    )


def stream_error(provider: Provider, error: object) -> UpstreamStatus:
    """An error the backend sent inside a stream it had started with HTTP 200."""
    message = error.get("message") if isinstance(error, dict) else error
    text = redact(str(message or "unknown error"), (provider.api_key or "",))
    return UpstreamStatus(
        f"provider '{provider.name}' failed mid-stream: {text}",
        provider=provider.name,
        upstream_status=502,
        retryable=True,
    )


def invalid_answer(provider: Provider, what: str) -> UpstreamUnavailable:
    """A whole (non-streamed) answer that is not what the protocol promises."""
    return UpstreamUnavailable(
        f"provider '{provider.name}' sent an invalid answer: {what}",
        provider=provider.name,
        retryable=True,
    )


async def probe(upstream: Upstream, url: str) -> None:
    """GET ``url`` (a models list): down on a connection failure, a timeout, 5xx or 401/403.

    Any other answer (404 from a server without that route, 429) means it is up.
    """
    status = await upstream.get(url)
    if status >= 500 or status in (401, 403):
        raise status_error(upstream.provider, status, b"")


def unsupported(provider: Provider, what: str) -> UnsupportedEndpoint:
    return UnsupportedEndpoint(f"provider '{provider.name}' (type {provider.type}) does not support {what}")


def status_error(provider: Provider, status: int, body: bytes, retry_after: float | None = None) -> UpstreamStatus:
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
        upstream_type=err_type if status in (400, 404, 413, 422) else None,
        param=param,
        code=code,
    )
    exc.retry_after = retry_after
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
