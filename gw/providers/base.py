"""What every provider adapter offers routing, and what they share:
error reading, the stream pump and the errors of a failed stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, Protocol, runtime_checkable

import orjson

from .._fast.events import Sink
from .._fast.openai import InvalidAnswer
from ..call import Call, Operation
from ..config.tables import Provider, Target
from ..context import Outcome
from ..errors import UpstreamStatus, UpstreamUnavailable, redact
from ..upstream import Headers, StreamResponse, Upstream


class Adapter(Protocol):
    """Speaks one provider type; serves the ``operations`` it lists.

    ``answer`` returns the bytes of the whole answer in the client's protocol;
    ``stream`` is an async generator of the client protocol's SSE bytes, one
    yield per upstream read (the events it completed). A pass-through
    operation (the backend speaks the client's protocol) sends ``call.body``
    with its model rewritten and forwards the backend's bytes; a converting
    one sends ``call.chat()`` in the backend's protocol and writes its
    decoder's events into the call's encoder. ``stream`` raises
    ``UpstreamError`` when the backend fails, before or after its first yield,
    and closes the upstream response when it is closed itself.
    Both set ``outcome.usage`` (OpenAI-shaped) when the backend reports it;
    none keeps state between requests. A request the backend's protocol
    cannot express raises ``BadRequest`` / ``InvalidInput`` (400).
    """

    provider: Provider
    operations: frozenset[Operation]

    async def answer(self, call: Call, target: Target, outcome: Outcome) -> bytes: ...

    def stream(self, call: Call, target: Target, outcome: Outcome) -> AsyncGenerator[bytes, None]: ...

    async def probe(self) -> None:
        """A cheap request that raises ``UpstreamError`` when the backend is down (health checks)."""

    async def aclose(self) -> None: ...


@runtime_checkable
class StoresResponses(Protocol):
    """An adapter whose backend keeps responses (OpenAI, Azure: the native Responses API)."""

    provider: Provider

    async def stored(self, method: str, path: str, call: Call) -> tuple[int, bytes]:
        """A stored response's route (``/v1/responses/{path}``): status and body."""
        ...


class StreamConverter(Protocol):
    """Turns a backend's stream bytes into the client's, read by read (``gw._fast``):
    ``events.Converter`` (decoder -> encoder) or a pass-through watcher.

    ``feed`` returns what is ready to send (maybe b""); ``close`` is called at
    the upstream's EOF and returns the last bytes. ``done``: the stream ended
    properly (its terminator was produced). ``error``: the backend's own error
    object, sent after HTTP 200. ``invalid``: why the bytes are not the protocol.
    ``usage``: the OpenAI-shaped usage once known.
    """

    @property
    def done(self) -> bool: ...
    @property
    def error(self) -> Any: ...
    @property
    def invalid(self) -> str | None: ...
    @property
    def usage(self) -> dict[str, Any] | None: ...

    def feed(self, chunk: bytes) -> bytes: ...

    def close(self) -> bytes: ...


async def pump(
    source: StreamResponse, converter: StreamConverter, provider: Provider, outcome: Outcome
) -> AsyncIterator[bytes]:
    """Relay an upstream response through ``converter``: one yield per read that completed events.

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
        usage = converter.usage
        if usage is not None:
            outcome.usage = usage


def write_answer(
    provider: Provider, call: Call, target: Target, outcome: Outcome, read: Callable[[Sink], object]
) -> bytes:
    """A whole answer's events (``read(sink)``) in the client's protocol: its bytes.

    502 (retryable) when they cannot be read or written (a tool call without a
    name, arguments that are not a JSON object).
    """
    encoder = call.whole_encoder(target.model)
    try:
        read(encoder)
        data = orjson.dumps(encoder.answer())
    except InvalidAnswer as exc:
        raise invalid_answer(provider, str(exc)) from None
    outcome.usage = encoder.openai_usage()
    return data


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


def status_error(
    provider: Provider, status: int, body: bytes, retry_after: float | None = None
) -> UpstreamStatus:
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


class HTTPAdapter:
    """What every adapter with a backend shares: its upstream client (headers set once),
    whole JSON answers read once, streams through a converter, the health probe.

    A type sets ``operations``, ``probe_path`` and its key header (``auth_headers``),
    and reads its error bodies in ``error`` (default: ``status_error``).
    """

    operations: frozenset[Operation]
    probe_path = "/models"  # a cheap GET that tells whether the backend is up

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        # Sent with every request, set once on the clients.
        headers = (("content-type", "application/json"), *self.auth_headers(), *provider.headers)
        self.upstream = Upstream(provider, headers)
        self.probe_url = provider.base_url + self.probe_path

    def auth_headers(self) -> list[tuple[str, str]]:
        key = self.provider.api_key
        return [("authorization", f"Bearer {key}")] if key else []

    def error(self, status: int, body: bytes, retry_after: float | None = None) -> UpstreamStatus:
        """The backend's error answer as gw's error."""
        return status_error(self.provider, status, body, retry_after)

    async def post_json(
        self, url: str, call: Call, payload: bytes, headers: Headers = ()
    ) -> tuple[dict[str, Any], bytes]:
        """POST and read the answer: a JSON object (and its bytes), or the error it is.
        ``headers`` go over the client's default ones (the client's own on pass-through)."""
        status, data, retry_after = await self.upstream.post(
            url, (("x-request-id", call.info.id), *headers), payload
        )
        if status != 200:
            raise self.error(status, data, retry_after)
        try:
            answer = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise invalid_answer(self.provider, "not JSON") from None
        if not isinstance(answer, dict):
            raise invalid_answer(self.provider, "not a JSON object")
        return answer, data

    async def stream_through(
        self,
        url: str,
        call: Call,
        payload: bytes,
        converter: StreamConverter,
        outcome: Outcome,
        accept: str = "text/event-stream",
        headers: Headers = (),
    ) -> AsyncGenerator[bytes, None]:
        """POST for a stream and relay it through ``converter``, one yield per read."""
        sent = (("accept", accept), ("x-request-id", call.info.id), *headers)
        async with self.upstream.stream(url, sent, payload) as resp:
            if resp.status != 200:
                raise self.error(resp.status, await resp.read_all(), resp.retry_after)
            async for out in pump(resp, converter, self.provider, outcome):
                yield out

    async def probe(self) -> None:
        await probe(self.upstream, self.probe_url)

    async def aclose(self) -> None:
        await self.upstream.aclose()
