"""The one place gw talks HTTP to backends: pools, timeouts, error mapping.

    upstream = Upstream(provider)          # at start-up, one per provider
    status, body, retry_after = await upstream.post(url, headers, payload)
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
here, once (``translate``), into gw's ``UpstreamError`` tree.

Timeouts (all from the provider's config): ``connect_timeout_s`` (TCP+TLS),
``first_byte_timeout_s`` (until the response headers), ``idle_timeout_s``
(between two body chunks of a stream) and ``timeout_s`` (a whole non-streaming
request).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

import aiohttp
from pyreqwest import exceptions as rx
from pyreqwest.client import Client, ClientBuilder

from .config.tables import Provider
from .errors import UpstreamTimeout, UpstreamUnavailable, redact

Headers = Sequence[tuple[str, str]]

# How long a backend asks not to be called again: its Retry-After, on these answers.
_RETRY_AFTER_STATUSES = frozenset({429, 503, 529})
_MAX_RETRY_AFTER_S = 3600.0


def retry_after(status: int, value: str | None) -> float | None:
    """Seconds from a ``Retry-After: <seconds>`` header of a 429/503 answer, capped at an hour.

    The HTTP-date form is rare from LLM APIs and read as absent.
    """
    if value is None or status not in _RETRY_AFTER_STATUSES:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN, negative
        return None
    return min(seconds, _MAX_RETRY_AFTER_S)


# Everything the clients raise for a failed exchange (timeouts included).
CLIENT_ERRORS = (TimeoutError, rx.RequestError, aiohttp.ClientError)


def translate(
    exc: BaseException, provider: Provider, on_timeout: str
) -> UpstreamTimeout | UpstreamUnavailable:
    """gw's error for a client exception, without secrets::

        except CLIENT_ERRORS as exc:
            raise translate(exc, provider, "no data for 60s (idle_timeout_s)") from None

    ``on_timeout`` says which of gw's deadlines was running: the clients' own
    names for them mislead (pyreqwest calls a read timeout before the headers
    a "connect" timeout). Only a timeout during the TCP handshake is told
    apart here, from the exception's own cause. A plain try/except, not a
    context manager: this wraps every chunk read.
    """
    if isinstance(exc, TimeoutError):  # asyncio's, aiohttp's and pyreqwest's alike
        if _in_connect(exc):
            on_timeout = f"could not connect within {provider.connect_timeout_s:g}s (connect_timeout_s)"
        return UpstreamTimeout(
            f"provider '{provider.name}' timed out: {on_timeout}", provider=provider.name, retryable=True
        )
    detail = _describe(exc, provider)
    return UpstreamUnavailable(
        f"provider '{provider.name}' is unreachable: {detail}", provider=provider.name, retryable=True
    )


def _in_connect(exc: BaseException) -> bool:
    """Whether a timeout hit while connecting (aiohttp's class; pyreqwest's innermost causes)."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return True
    if isinstance(exc, rx.PyreqwestError):
        causes = (getattr(exc, "details", None) or {}).get("causes") or []
        return any(c.get("message") == "tcp connect error" for c in causes)
    return False


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

    __slots__ = ("status", "retry_after", "_content", "_provider", "_idle", "_idle_message")

    def __init__(
        self, resp: aiohttp.ClientResponse, provider: Provider, idle: float | None, idle_message: str
    ) -> None:
        self.status = resp.status
        self.retry_after = retry_after(resp.status, resp.headers.get("retry-after"))
        self._content = resp.content
        self._provider = provider
        self._idle = idle
        self._idle_message = idle_message

    async def read(self) -> bytes | None:
        """Whatever body bytes have arrived (waiting for some), or None at the end."""
        try:
            if self._idle is None:  # aiohttp's own per-read timeout is the idle timeout
                chunk = await self._content.readany()
            else:
                async with asyncio.timeout(self._idle):
                    chunk = await self._content.readany()
        except CLIENT_ERRORS as exc:
            raise translate(exc, self._provider, self._idle_message) from None
        return chunk or None

    def __aiter__(self) -> StreamResponse:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.read()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def read_all(self, limit: int = 1 << 20) -> bytes:
        """The rest of the body (for error responses), at most ``limit`` bytes."""
        try:
            return await self._content.read(limit)
        except CLIENT_ERRORS as exc:
            raise translate(exc, self._provider, self._idle_message) from None


class Upstream:
    """A provider's two connection pools, created at start-up and closed at shutdown.

    Both clients' own read timeouts (per read, and until the headers) are the
    larger of ``first_byte_timeout_s`` and ``idle_timeout_s``; when the two
    differ, the smaller one is an ``asyncio.timeout`` on top. (pyreqwest 0.15
    does not abort a request cancelled before its headers: there its own read
    timeout bounds such a leftover.)
    """

    def __init__(self, provider: Provider, headers: Headers = ()) -> None:
        """``headers`` go with every request (auth, content type, the provider's extras)."""
        self.provider = provider
        first_byte, idle = provider.first_byte_timeout_s, provider.idle_timeout_s
        read_timeout = max(first_byte, idle)
        self._client: Client = (
            ClientBuilder()
            .default_headers(list(headers))
            .max_connections(provider.max_connections)
            .connect_timeout(timedelta(seconds=provider.connect_timeout_s))
            .read_timeout(timedelta(seconds=read_timeout))
            .timeout(timedelta(seconds=provider.timeout_s))  # whole answers only: streams use aiohttp
            .pool_idle_timeout(timedelta(seconds=90))
            .tcp_nodelay(True)
            .follow_redirects(False)
            .build()
        )
        self._session = aiohttp.ClientSession(
            headers=list(headers),
            connector=aiohttp.TCPConnector(limit=provider.max_connections, keepalive_timeout=90),
            timeout=aiohttp.ClientTimeout(
                total=None, connect=provider.connect_timeout_s, sock_read=read_timeout
            ),
            auto_decompress=True,
        )
        self._first_byte = first_byte if first_byte < read_timeout else None
        self._idle = idle if idle < read_timeout else None
        self._first_byte_message = f"no response headers within {first_byte:g}s (first_byte_timeout_s)"
        self._idle_message = f"no data for {idle:g}s (idle_timeout_s)"
        self._total_message = f"no complete answer within {provider.timeout_s:g}s (timeout_s)"
        # Whole answers when first_byte >= idle: one read timeout for the headers and each read.
        self._read_message = f"no data for {read_timeout:g}s (first_byte_timeout_s)"

    def _whole_deadline(self, started: float, otherwise: str) -> str:
        """Which deadline cut a non-streaming request: timeout_s once it has run that long."""
        if time.monotonic() - started >= self.provider.timeout_s * 0.98:
            return self._total_message
        return otherwise

    async def post(self, url: str, headers: Headers, body: bytes) -> tuple[int, bytes, float | None]:
        """POST and read the whole answer: the non-streaming path.

        Returns the status, the body and the answer's Retry-After in seconds (or None).
        """
        builder = self._client.post(url).headers(headers).body_bytes(body)
        provider = self.provider
        started = time.monotonic()
        if self._first_byte is None:
            # The client's read timeout (until the headers, then per read) is the
            # first-byte one; its total is timeout_s. One call, one thread hop.
            try:
                resp = await builder.build().send()
                data = bytes(await resp.bytes())
            except CLIENT_ERRORS as exc:
                raise translate(exc, provider, self._whole_deadline(started, self._read_message)) from None
            status = resp.status
            if status < 400:
                return status, data, None
            return status, data, retry_after(status, resp.get_header("retry-after"))
        # A shorter first-byte deadline needs the headers on their own.
        request = builder.streamed_read_buffer_limit(0).build_streamed()
        try:
            async with asyncio.timeout(self._first_byte):
                resp = await request.__aenter__()
        except CLIENT_ERRORS as exc:
            raise translate(exc, provider, self._whole_deadline(started, self._first_byte_message)) from None
        try:
            data = bytes(await resp.body_reader.bytes())
        except CLIENT_ERRORS as exc:
            raise translate(exc, provider, self._whole_deadline(started, self._idle_message)) from None
        finally:
            await request.__aexit__(None, None, None)
        status = resp.status
        return status, bytes(data), retry_after(status, resp.get_header("retry-after"))

    async def get(self, url: str, headers: Headers = ()) -> int:
        """GET and drop the body: the status of a health probe.

        Bounded by ``first_byte_timeout_s`` as a whole, not ``timeout_s``: a
        probe is small, and one that hangs must not hold a health check up.
        """
        request = self._client.get(url).headers(headers).build()
        try:
            async with asyncio.timeout(self.provider.first_byte_timeout_s):
                resp = await request.send()
                await resp.bytes()
        except CLIENT_ERRORS as exc:
            raise translate(exc, self.provider, self._first_byte_message) from None
        return resp.status

    @asynccontextmanager
    async def stream(self, url: str, headers: Headers, body: bytes) -> AsyncIterator[StreamResponse]:
        """POST and hand back the response as soon as its headers arrive.

        Leaving the block, normally or by an exception or a cancellation (the
        client went away), closes the upstream connection at once.
        """
        try:
            if self._first_byte is None:  # aiohttp's read timeout runs until the headers too
                resp = await self._session.post(url, headers=headers, data=body)
            else:
                async with asyncio.timeout(self._first_byte):
                    resp = await self._session.post(url, headers=headers, data=body)
        except CLIENT_ERRORS as exc:
            raise translate(exc, self.provider, self._first_byte_message) from None
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
