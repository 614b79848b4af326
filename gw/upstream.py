"""The one place gw talks HTTP to backends: pools, timeouts, error mapping.

    upstream = Upstream(provider)          # at start-up, one per provider
    status, body, retry_after = await upstream.post(url, headers, payload)
    async with upstream.stream(url, headers, payload) as resp:
        while (chunk := await resp.read()) is not None: ...
    await upstream.aclose()                # at shutdown

One client, **aiohttp**, for whole answers and streams alike: a cancellation
(the client left, a deadline) closes the upstream connection at once, also
while gw still waits for the response headers, so a backend stops generating
an answer nobody will read. pyreqwest (Rust) did whole answers at ~1.45x the
requests per second but cannot abort a request before its headers; see
docs/architecture.md, "Upstream client".

Nothing outside this module imports aiohttp; its exceptions are translated
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

import aiohttp

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
CLIENT_ERRORS = (TimeoutError, aiohttp.ClientError)


def translate(
    exc: BaseException, provider: Provider, on_timeout: str
) -> UpstreamTimeout | UpstreamUnavailable:
    """gw's error for a client exception, without secrets::

        except CLIENT_ERRORS as exc:
            raise translate(exc, provider, "no data for 60s (idle_timeout_s)") from None

    ``on_timeout`` says which of gw's deadlines was running: aiohttp's own
    names for them are its settings', not gw's. Only a timeout during the TCP
    handshake is told apart here, by its class. A plain try/except, not a
    context manager: this wraps every chunk read.
    """
    if isinstance(exc, TimeoutError):  # asyncio's and aiohttp's alike
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            on_timeout = f"could not connect within {provider.connect_timeout_s:g}s (connect_timeout_s)"
        return UpstreamTimeout(
            f"provider '{provider.name}' timed out: {on_timeout}", provider=provider.name, retryable=True
        )
    detail = _describe(exc, provider)
    return UpstreamUnavailable(
        f"provider '{provider.name}' is unreachable: {detail}", provider=provider.name, retryable=True
    )


def _describe(exc: BaseException, provider: Provider) -> str:
    """What failed, in one line: the client's message, else the exception's class."""
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
    """A provider's connection pool, created at start-up and closed at shutdown.

    aiohttp's read timeout is per read and also runs until the headers: it is
    the larger of ``first_byte_timeout_s`` and ``idle_timeout_s``; when the two
    differ, the smaller one is an ``asyncio.timeout`` on top. A whole answer
    is also bounded by ``timeout_s``.
    """

    def __init__(self, provider: Provider, headers: Headers = ()) -> None:
        """``headers`` go with every request (auth, content type, the provider's extras)."""
        self.provider = provider
        first_byte, idle = provider.first_byte_timeout_s, provider.idle_timeout_s
        read_timeout = max(first_byte, idle)
        self._session = aiohttp.ClientSession(
            headers=list(headers),
            connector=aiohttp.TCPConnector(limit=provider.max_connections, keepalive_timeout=90),
            timeout=aiohttp.ClientTimeout(
                total=None, connect=provider.connect_timeout_s, sock_read=read_timeout
            ),
            cookie_jar=aiohttp.DummyCookieJar(),  # a backend's cookies must not follow other callers
            auto_decompress=True,
        )
        self._whole = aiohttp.ClientTimeout(
            total=provider.timeout_s, connect=provider.connect_timeout_s, sock_read=read_timeout
        )
        self._first_byte = first_byte if first_byte < read_timeout else None
        self._idle = idle if idle < read_timeout else None
        self._first_byte_message = f"no response headers within {first_byte:g}s (first_byte_timeout_s)"
        self._idle_message = f"no data for {idle:g}s (idle_timeout_s)"
        self._total_message = f"no complete answer within {provider.timeout_s:g}s (timeout_s)"
        # A whole answer's body reads have aiohttp's read timeout alone: the larger one.
        longer = "first_byte_timeout_s" if first_byte >= idle else "idle_timeout_s"
        self._read_message = f"no data for {read_timeout:g}s ({longer})"

    def _whole_deadline(self, started: float, otherwise: str) -> str:
        """Which deadline cut a non-streaming request: timeout_s once it has run that long."""
        if time.monotonic() - started >= self.provider.timeout_s * 0.98:
            return self._total_message
        return otherwise

    async def _send(
        self, method: str, url: str, headers: Headers, body: bytes | None, timeout: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        """Send and wait for the response headers (the first-byte deadline, when it is the shorter)."""
        request = self._session.request(
            method, url, headers=headers, data=body, timeout=timeout, allow_redirects=False
        )
        if self._first_byte is None:  # aiohttp's read timeout runs until the headers too
            return await request
        async with asyncio.timeout(self._first_byte):
            return await request

    async def post(self, url: str, headers: Headers, body: bytes) -> tuple[int, bytes, float | None]:
        """POST and read the whole answer: the non-streaming path.

        Returns the status, the body and the answer's Retry-After in seconds (or None).
        A cancellation (the client left) closes the upstream connection at once.
        """
        return await self.request("POST", url, headers, body)

    async def request(
        self, method: str, url: str, headers: Headers, body: bytes | None = None
    ) -> tuple[int, bytes, float | None]:
        """``post`` for any method (``GET``/``DELETE`` of a stored response)."""
        provider = self.provider
        started = time.monotonic()
        try:
            resp = await self._send(method, url, headers, body, self._whole)
        except CLIENT_ERRORS as exc:
            raise translate(exc, provider, self._whole_deadline(started, self._first_byte_message)) from None
        try:
            data = await resp.read()
        except CLIENT_ERRORS as exc:
            raise translate(exc, provider, self._whole_deadline(started, self._read_message)) from None
        finally:
            _finish(resp)
        status = resp.status
        if status < 400:
            return status, data, None
        return status, data, retry_after(status, resp.headers.get("retry-after"))

    async def get(self, url: str, headers: Headers = ()) -> int:
        """GET and drop the body: the status of a health probe.

        Bounded by ``first_byte_timeout_s`` as a whole, not ``timeout_s``: a
        probe is small, and one that hangs must not hold a health check up.
        """
        try:
            async with asyncio.timeout(self.provider.first_byte_timeout_s):
                resp = await self._send("GET", url, headers, None, self._whole)
                try:
                    await resp.read()
                finally:
                    _finish(resp)
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
            resp = await self._send("POST", url, headers, body, self._session.timeout)
        except CLIENT_ERRORS as exc:
            raise translate(exc, self.provider, self._first_byte_message) from None
        try:
            yield StreamResponse(resp, self.provider, self._idle, self._idle_message)
        finally:
            _finish(resp)

    async def aclose(self) -> None:
        await self._session.close()


def _finish(resp: aiohttp.ClientResponse) -> None:
    """Give the connection back when the body was read to its end, else close it
    (an unfinished answer's connection is not reusable)."""
    if resp.content.at_eof():
        resp.release()
    else:
        resp.close()
