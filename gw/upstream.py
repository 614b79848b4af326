"""The one place gw talks HTTP to backends: pools, timeouts, error mapping.

    upstream = Upstream(provider)          # at start-up, one per provider
    status, body = await upstream.post(url, headers, payload)
    async with upstream.stream(url, headers, payload) as resp:
        while (chunk := await resp.read()) is not None: ...
    await upstream.aclose()                # at shutdown

Two clients, each where it measured best (README, "Upstream client"):

- whole answers go through **pyreqwest** (Rust reqwest/hyper): ~2x the
  requests per second of aiohttp on one core;
- streams go through **aiohttp**: it relays more streams per second, and a
  cancellation (the client left, a first-byte timeout) closes the upstream
  connection at once, even before the response headers, which pyreqwest 0.15
  does not do.

Nothing outside this module imports either; their exceptions are translated
here, once (``map_client_errors``), into gw's ``UpstreamError`` tree.

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

import aiohttp
from pyreqwest import exceptions as rx
from pyreqwest.client import Client, ClientBuilder

from .config.tables import Provider
from .errors import UpstreamTimeout, UpstreamUnavailable, redact

Headers = Sequence[tuple[str, str]]


@contextmanager
def map_client_errors(provider: Provider, on_timeout: str) -> Iterator[None]:
    """Translate the clients' exceptions into gw's, without secrets.

    ``on_timeout`` says which of gw's deadlines was running: the clients' own
    names for them mislead (pyreqwest calls a read timeout before the headers
    a "connect" timeout).
    """
    try:
        yield
    except TimeoutError as exc:  # asyncio's, aiohttp's and pyreqwest's timeouts alike
        detail = _describe(exc, provider)
        raise UpstreamTimeout(
            f"provider '{provider.name}' timed out: {on_timeout}" + (f" [{detail}]" if detail else ""),
            provider=provider.name,
            retryable=True,
        ) from None
    except (rx.RequestError, aiohttp.ClientError) as exc:
        raise UpstreamUnavailable(
            f"provider '{provider.name}' is unreachable: {_describe(exc, provider)}",
            provider=provider.name,
            retryable=True,
        ) from None


def _describe(exc: BaseException, provider: Provider) -> str:
    """What failed, in one line: the client's message and its innermost cause."""
    if isinstance(exc, rx.PyreqwestError):
        text = exc.message
        causes = (getattr(exc, "details", None) or {}).get("causes") or []
        if causes:
            text = f"{text}: {causes[-1].get('message', '')}"
    else:
        text = str(exc) or ("" if isinstance(exc, TimeoutError) else type(exc).__name__)
    return redact(text.splitlines()[0][:300], (provider.api_key or "",)) if text else ""


class StreamResponse:
    """A streamed response: each read waits at most the idle timeout."""

    __slots__ = ("status", "_content", "_provider", "_idle", "_idle_message")

    def __init__(
        self, resp: aiohttp.ClientResponse, provider: Provider, idle: float | None, idle_message: str
    ) -> None:
        self.status = resp.status
        self._content = resp.content
        self._provider = provider
        self._idle = idle
        self._idle_message = idle_message

    async def read(self) -> bytes | None:
        """Whatever body bytes have arrived (waiting for some), or None at the end."""
        with map_client_errors(self._provider, self._idle_message):
            if self._idle is None:  # aiohttp's own per-read timeout is the idle timeout
                chunk = await self._content.readany()
            else:
                async with asyncio.timeout(self._idle):
                    chunk = await self._content.readany()
        return chunk or None

    async def read_all(self, limit: int = 1 << 20) -> bytes:
        """The rest of the body (for error responses), at most ``limit`` bytes."""
        with map_client_errors(self._provider, self._idle_message):
            return await self._content.read(limit)


class Upstream:
    """A provider's two connection pools, created at start-up and closed at shutdown.

    Both clients' own read timeouts (per read, and until the headers) are the
    larger of ``first_byte_timeout_s`` and ``idle_timeout_s``; when the two
    differ, the smaller one is an ``asyncio.timeout`` on top. (pyreqwest 0.15
    does not abort a request cancelled before its headers: there its own read
    timeout bounds such a leftover.)
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
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=provider.max_connections, keepalive_timeout=90),
            timeout=aiohttp.ClientTimeout(
                total=None, connect=provider.connect_timeout_s, sock_read=read_timeout
            ),
            auto_decompress=True,
        )
        self._first_byte = first_byte if first_byte < read_timeout else None
        self._idle = idle if idle < read_timeout else None
        self._total = timedelta(seconds=provider.timeout_s)
        self._first_byte_message = f"no response headers within {first_byte:g}s (first_byte_timeout_s)"
        self._idle_message = f"no data for {idle:g}s (idle_timeout_s)"
        self._total_message = f"no complete answer within {provider.timeout_s:g}s (timeout_s)"

    async def post(self, url: str, headers: Headers, body: bytes) -> tuple[int, bytes]:
        """POST and read the whole answer: the non-streaming path.

        The headers are bounded by the first-byte timeout, the whole answer by
        ``timeout_s`` (pyreqwest's per-request total, which closes the connection).
        """
        request = (
            self._client.post(url)
            .headers(headers)
            .body_bytes(body)
            .timeout(self._total)
            # 0: return at the headers; pyreqwest's default waits for 64 kB of body first.
            .streamed_read_buffer_limit(0)
            .build_streamed()
        )
        provider = self.provider
        with map_client_errors(provider, self._first_byte_message):
            async with asyncio.timeout(self._first_byte):  # None: no deadline of asyncio's
                resp = await request.__aenter__()
        try:
            with map_client_errors(provider, self._total_message):
                data = await resp.body_reader.bytes()
        finally:
            await request.__aexit__(None, None, None)
        return resp.status, bytes(data)

    async def get(self, url: str, headers: Headers) -> tuple[int, bytes]:
        request = self._client.get(url).headers(headers).timeout(self._total).build()
        with map_client_errors(self.provider, self._total_message):
            resp = await request.send()
            data = await resp.bytes()
        return resp.status, bytes(data)

    @asynccontextmanager
    async def stream(self, url: str, headers: Headers, body: bytes) -> AsyncIterator[StreamResponse]:
        """POST and hand back the response as soon as its headers arrive.

        Leaving the block, normally or by an exception or a cancellation (the
        client went away), closes the upstream connection at once.
        """
        with map_client_errors(self.provider, self._first_byte_message):
            async with asyncio.timeout(self._first_byte):
                resp = await self._session.post(url, headers=headers, data=body)
        try:
            yield StreamResponse(resp, self.provider, self._idle, self._idle_message)
        finally:
            # close(), not release(): an unfinished stream's connection is not reusable.
            if resp.content.at_eof():
                resp.release()
            else:
                resp.close()

    async def aclose(self) -> None:
        await self._client.close()
        await self._session.close()
