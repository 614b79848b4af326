"""The one HTTP client gw talks to backends with: pools, timeouts, error mapping.

    upstream = Upstream(provider)          # at start-up, one per provider
    status, body = await upstream.post(url, headers, payload)
    async with upstream.stream(url, headers, payload) as resp:
        while (chunk := await resp.read()) is not None: ...
    await upstream.aclose()                # at shutdown

The client is pyreqwest (Rust reqwest/hyper): in loadtests/client_bench.py it
proxied 1.5-2x the requests per second of aiohttp and ~15x httpx on one core
(README, "Upstream client"). It is young, so it is pinned and nothing outside
this module imports it: foreign exceptions are translated here, once
(``map_client_errors``), into gw's ``UpstreamError`` tree.

Timeouts (all from the provider's config): ``connect_timeout_s`` (TCP+TLS),
``first_byte_timeout_s`` (until the response headers), ``idle_timeout_s``
(between two body chunks of a stream) and ``timeout_s`` (a whole non-streaming
request).
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from typing import AsyncIterator, Iterator, Sequence

from pyreqwest import exceptions as rx
from pyreqwest.client import Client, ClientBuilder

from .config.tables import Provider
from .errors import UpstreamTimeout, UpstreamUnavailable, redact

Headers = Sequence[tuple[str, str]]


@contextmanager
def map_client_errors(provider: Provider, on_timeout: str | None = None) -> Iterator[None]:
    """Translate the client library's exceptions into gw's, without secrets.

    ``on_timeout`` says which of gw's own deadlines an ``asyncio.timeout`` stands for.
    """
    try:
        yield
    except TimeoutError as exc:
        # pyreqwest calls a read timeout before the headers a "connect" timeout;
        # the caller knows which of gw's deadlines was running, the client's
        # message tells a real connect timeout apart.
        what = on_timeout or ""
        if isinstance(exc, rx.PyreqwestError):
            what = f"{what} [{_describe(exc, provider)}]" if what else _describe(exc, provider)
        raise UpstreamTimeout(
            f"provider '{provider.name}' timed out: {what}",
            provider=provider.name,
            retryable=True,
        ) from None
    except (rx.TransportError, rx.DecodeError, rx.ClientClosedError) as exc:
        raise UpstreamUnavailable(
            f"provider '{provider.name}' is unreachable: {_describe(exc, provider)}",
            provider=provider.name,
            retryable=True,
        ) from None
    except rx.RequestError as exc:  # anything else the client raises
        raise UpstreamUnavailable(
            f"provider '{provider.name}' failed: {_describe(exc, provider)}",
            provider=provider.name,
            retryable=True,
        ) from None


def _describe(exc: BaseException, provider: Provider) -> str:
    """What failed, in one line: the client's message and its innermost cause."""
    if isinstance(exc, rx.PyreqwestError):
        text = exc.message
        details = getattr(exc, "details", None) or {}
        causes = details.get("causes") or []
        if causes:
            text = f"{text}: {causes[-1].get('message', '')}"
    else:
        text = str(exc) or ("no response in time" if isinstance(exc, TimeoutError) else type(exc).__name__)
    return redact(text.splitlines()[0][:300], (provider.api_key or "",))


class StreamResponse:
    """A response whose body is read chunk by chunk, each read bounded by the idle timeout."""

    __slots__ = ("status", "_resp", "_reader", "_idle", "_provider", "_idle_message")

    def __init__(self, resp: object, idle_s: float | None, provider: Provider) -> None:
        self._resp = resp
        self.status: int = resp.status  # type: ignore[attr-defined]
        self._reader = resp.body_reader  # type: ignore[attr-defined]
        self._idle = idle_s  # None: the client's own read timeout is the idle timeout
        self._provider = provider
        self._idle_message = f"no data for {provider.idle_timeout_s:g}s (idle_timeout_s)"

    def header(self, name: str) -> str | None:
        return self._resp.get_header(name)  # type: ignore[attr-defined, no-any-return]

    async def read(self) -> bytes | None:
        """The next chunk of the body, or None at its end."""
        with map_client_errors(self._provider, self._idle_message):
            if self._idle is None:
                chunk = await self._reader.read_chunk()
            else:
                async with asyncio.timeout(self._idle):
                    chunk = await self._reader.read_chunk()
        return None if chunk is None else bytes(chunk)

    async def read_all(self, limit: int = 1 << 20) -> bytes:
        """The rest of the body (for error responses), at most ``limit`` bytes."""
        parts: list[bytes] = []
        size = 0
        while size < limit and (chunk := await self.read()) is not None:
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)[:limit]


class Upstream:
    """One pooled client per provider, created at start-up and closed at shutdown.

    The client's own read timeout (per read, and until the response headers)
    is the larger of ``first_byte_timeout_s`` and ``idle_timeout_s``; the
    smaller one, if they differ, is an ``asyncio.timeout`` on top. The client's
    own timeouts close the connection; an asyncio cancellation before the
    headers arrive does not (pyreqwest 0.15 finishes the request in the
    background), so the client's timeout also bounds that leftover.
    """

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        first_byte, idle = provider.first_byte_timeout_s, provider.idle_timeout_s
        read_timeout = max(first_byte, idle)
        self._client: Client = (
            ClientBuilder()
            .max_connections(provider.max_connections)
            .connect_timeout(timedelta(seconds=provider.connect_timeout_s))
            .read_timeout(timedelta(seconds=read_timeout))
            .pool_idle_timeout(timedelta(seconds=90))
            .tcp_nodelay(True)
            .follow_redirects(False)
            .build()
        )
        self._first_byte = first_byte if first_byte < read_timeout else None
        self._idle = idle if idle < read_timeout else None
        self._total = timedelta(seconds=provider.timeout_s)
        self._first_byte_message = f"no response headers within {first_byte:g}s (first_byte_timeout_s)"
        self._total_message = (
            f"no complete answer within {provider.timeout_s:g}s (timeout_s) or a pause over {idle:g}s"
        )

    async def post(self, url: str, headers: Headers, body: bytes) -> tuple[int, bytes]:
        """POST and read the whole answer: the non-streaming path.

        The headers are bounded by the first-byte timeout, the whole answer by
        ``timeout_s`` (the client's per-request total, which closes the connection).
        """
        async with self.stream(url, headers, body, self._total) as resp:
            with map_client_errors(self.provider, self._total_message):
                data = await resp._reader.bytes()
        return resp.status, bytes(data)

    async def get(self, url: str, headers: Headers) -> tuple[int, bytes]:
        request = self._client.get(url).headers(headers).timeout(self._total).build()
        with map_client_errors(self.provider, self._total_message):
            resp = await request.send()
            data = await resp.bytes()
        return resp.status, bytes(data)

    @asynccontextmanager
    async def stream(
        self, url: str, headers: Headers, body: bytes, total: timedelta | None = None
    ) -> AsyncIterator[StreamResponse]:
        """POST and hand back the response as soon as its headers arrive.

        Leaving the block, normally or by an exception or a cancellation (the
        client went away), closes the upstream response at once.
        """
        provider = self.provider
        builder = self._client.post(url).headers(headers).body_bytes(body)
        if total is not None:
            builder = builder.timeout(total)
        # Buffer limit 0: hand over each chunk as it arrives. With the default,
        # pyreqwest holds back the response (headers included) until 64 kB arrived.
        request = builder.streamed_read_buffer_limit(0).build_streamed()
        with map_client_errors(provider, self._first_byte_message):
            if self._first_byte is None:
                resp = await request.__aenter__()
            else:
                async with asyncio.timeout(self._first_byte):
                    resp = await request.__aenter__()
        try:
            yield StreamResponse(resp, self._idle, provider)
        finally:
            await request.__aexit__(None, None, None)

    async def aclose(self) -> None:
        await self._client.close()
