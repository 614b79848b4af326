"""One minimal BlackSheep proxy app per HTTP-client candidate.

Select the candidate with ``GW_BENCH_CLIENT`` (one of ``CLIENTS``) and the upstream with ``UPSTREAM_URL``::

    GW_BENCH_CLIENT=pyreqwest UPSTREAM_URL=http://127.0.0.1:8001 \
        granian --interface asgi --loop uvloop --workers 1 --no-ws --http 1 \
        loadtests.clients.proxies:app

``loadtests.clients.proxies:app_<name>`` also works (built lazily on first access).

Routes:
  POST /v1/chat/completions  read body, forward upstream, return status/body/content-type
  POST /stream               same, but the upstream body is relayed chunk by chunk
                             (StreamedContent) as it arrives
Timeouts are configured the way the gateway would (total 60 s for buffered calls,
60 s idle/read for streams) so that timer costs are part of the comparison.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

from blacksheep import Application, Content, Request, Response, StreamedContent

POOL = 256
STREAM_BUFFER = int(os.environ.get("GW_PYREQWEST_STREAM_BUFFER", "1"))
TOTAL_S = 60.0
IDLE_S = 60.0
JSON = "application/json"
CLIENTS = (
    "httpx", "httpx_aiohttp", "aiohttp", "aiohttp_lean", "pyreqwest", "pyreqwest_mt", "pyqwest",
    "blacksheep", "rnet",
)  # fmt: skip


def _upstream() -> str:
    base = os.environ.get("UPSTREAM_URL", "http://127.0.0.1:8001").rstrip("/")
    if base.endswith("/v1"):
        base = base[:-3]
    return base + "/v1/chat/completions"


# A streamed upstream call: (status, content_type, chunk iterator, close()).
Streamed = tuple[int, str, AsyncIterator[bytes], Callable[[], Awaitable[None]]]


class Candidate:
    name = "?"

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def forward(self, body: bytes) -> tuple[int, str, bytes]: raise NotImplementedError
    async def open_stream(self, body: bytes) -> Streamed: raise NotImplementedError


class HttpxCandidate(Candidate):
    name = "httpx"

    def _make(self):
        import httpx

        return httpx.AsyncClient(
            limits=httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL),
            timeout=httpx.Timeout(TOTAL_S, connect=5.0),
        )

    async def start(self) -> None:
        import httpx

        self.httpx = httpx
        self.client = self._make()
        self.url = _upstream()
        self.headers = {"content-type": JSON}

    async def close(self) -> None:
        await self.client.aclose()

    async def forward(self, body: bytes):
        r = await self.client.post(self.url, content=body, headers=self.headers)
        return r.status_code, r.headers.get("content-type", JSON), r.content

    async def open_stream(self, body: bytes) -> Streamed:
        req = self.client.build_request("POST", self.url, content=body, headers=self.headers)
        r = await self.client.send(req, stream=True)
        return r.status_code, r.headers.get("content-type", JSON), r.aiter_raw(), r.aclose


class HttpxAiohttpCandidate(HttpxCandidate):
    name = "httpx_aiohttp"

    def _make(self):
        import httpx
        from httpx_aiohttp import HttpxAiohttpClient

        return HttpxAiohttpClient(
            limits=httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL),
            timeout=httpx.Timeout(TOTAL_S, connect=5.0),
        )


class AiohttpCandidate(Candidate):
    name = "aiohttp"

    async def start(self) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=POOL),
            timeout=aiohttp.ClientTimeout(total=TOTAL_S, connect=5.0),
        )
        # streams: no total, only per-read idle timeout
        self.stream_timeout = aiohttp.ClientTimeout(total=None, connect=5.0, sock_read=IDLE_S)
        self.url = _upstream()
        self.headers = {"content-type": JSON}

    async def close(self) -> None:
        await self.session.close()

    async def forward(self, body: bytes):
        async with self.session.post(self.url, data=body, headers=self.headers) as r:
            data = await r.read()
            return r.status, r.headers.get("content-type", JSON), data

    async def open_stream(self, body: bytes) -> Streamed:
        r = await self.session.post(
            self.url, data=body, headers=self.headers, timeout=self.stream_timeout
        )

        async def close() -> None:
            r.release()  # returns the connection if fully read, else closes it

        return r.status, r.headers.get("content-type", JSON), r.content.iter_any(), close


class AiohttpLeanCandidate(AiohttpCandidate):
    """aiohttp without what a gateway's upstream calls never use: cookies, redirects,
    decompression of whole answers, default headers."""

    name = "aiohttp_lean"

    async def start(self) -> None:
        import aiohttp

        await super().start()
        await self.session.close()
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=POOL, ttl_dns_cache=None, use_dns_cache=True),
            timeout=aiohttp.ClientTimeout(total=TOTAL_S, connect=5.0),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
        )

    async def forward(self, body: bytes):
        r = await self.session.post(self.url, data=body, headers=self.headers, allow_redirects=False)
        try:
            data = await r.read()
        finally:
            r.release()
        return r.status, r.headers.get("content-type", JSON), data


class PyreqwestCandidate(Candidate):
    name = "pyreqwest"
    multithreaded = False

    async def start(self) -> None:
        from pyreqwest.client import ClientBuilder

        self.client = (
            ClientBuilder()
            .max_connections(POOL)
            .runtime_multithreaded(self.multithreaded)
            .connect_timeout(timedelta(seconds=5))
            .read_timeout(timedelta(seconds=IDLE_S))
            .error_for_status(False)
            .build()
        )
        self.total = timedelta(seconds=TOTAL_S)
        self.url = _upstream()

    async def close(self) -> None:
        await self.client.close()

    async def forward(self, body: bytes):
        resp = await (
            self.client.post(self.url)
            .body_bytes(body)
            .header("content-type", JSON)
            .timeout(self.total)
            .build()
            .send()
        )
        data = await resp.bytes()
        return resp.status, resp.get_header("content-type") or JSON, bytes(data)

    async def open_stream(self, body: bytes) -> Streamed:
        # NB: without streamed_read_buffer_limit(small) pyreqwest buffers up to 64 KiB
        # (default) before __aenter__ returns -> SSE would be delivered all at once.
        sreq = (
            self.client.post(self.url)
            .body_bytes(body)
            .header("content-type", JSON)
            .streamed_read_buffer_limit(STREAM_BUFFER)
            .build_streamed()
        )
        resp = await sreq.__aenter__()
        reader = resp.body_reader

        async def chunks() -> AsyncIterator[bytes]:
            while (chunk := await reader.read_chunk()) is not None:
                yield bytes(chunk)

        async def close() -> None:
            await sreq.__aexit__(None, None, None)

        return resp.status, resp.get_header("content-type") or JSON, chunks(), close


class PyreqwestMTCandidate(PyreqwestCandidate):
    name = "pyreqwest_mt"
    multithreaded = True


class PyqwestCandidate(Candidate):
    """pyqwest (reqwest/hyper on a tokio runtime of its own, like pyreqwest).

    The async client has no per-request timeout: the total deadline of a buffered
    call is an asyncio.timeout (cancelling aborts the Rust request), the idle timeout
    of streams is the transport's read_timeout (per read, also until the headers).
    Decompression and OpenTelemetry (on by default) are off, redirects not followed.
    """

    name = "pyqwest"

    async def start(self) -> None:
        from pyqwest import Client, Headers, HTTPTransport, Request

        self.Request, self.Headers = Request, Headers
        self.transport = HTTPTransport(
            connect_timeout=5.0,
            read_timeout=IDLE_S,
            pool_idle_timeout=90.0,
            pool_max_idle_per_host=POOL,     # default 2: would churn connections at 32c
            max_connections_per_address=POOL,
            follow_redirects=False,
            enable_gzip=False,
            enable_brotli=False,
            enable_zstd=False,
            enable_otel=False,
        )
        self.client = Client(self.transport)
        self.url = _upstream()
        self.headers = {"content-type": JSON}

    async def close(self) -> None:
        await self.transport.aclose()

    async def forward(self, body: bytes):
        async with asyncio.timeout(TOTAL_S):
            r = await self.client.post(self.url, self.headers, body)
        return r.status, r.headers.get("content-type") or JSON, r.content

    async def open_stream(self, body: bytes) -> Streamed:
        # transport.execute() hands back the streaming Response without a context
        # manager (Client.stream() is an asynccontextmanager); resp.aclose() ends it.
        req = self.Request("POST", self.url, self.Headers(self.headers), body)
        resp = await self.transport.execute(req)

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in resp.content:
                yield bytes(chunk)

        return resp.status, resp.headers.get("content-type") or JSON, chunks(), resp.aclose


class BlackSheepCandidate(Candidate):
    """BlackSheep's own client (asyncio protocol + httptools): already a dependency;
    a cancelled task closes its connection."""

    name = "blacksheep"

    async def start(self) -> None:
        from blacksheep.client import ClientSession
        from blacksheep.client.pool import ConnectionPools

        self.Content = Content
        loop = asyncio.get_running_loop()
        self.session = ClientSession(
            pools=ConnectionPools(loop), follow_redirects=False,
            connection_timeout=5.0, request_timeout=TOTAL_S,
        )  # fmt: skip
        self.url = _upstream()

    async def close(self) -> None:
        await self.session.close()

    async def forward(self, body: bytes):
        r = await self.session.post(self.url, Content(JSON.encode(), body))
        data = await r.read()
        ctype = r.headers.get_first(b"content-type")
        return r.status, ctype.decode() if ctype else JSON, data or b""

    async def open_stream(self, body: bytes) -> Streamed:
        r = await self.session.post(self.url, Content(JSON.encode(), body))
        ctype = r.headers.get_first(b"content-type")

        async def close() -> None:
            pass  # the session returns the connection once the body was read

        return r.status, ctype.decode() if ctype else JSON, r.stream(), close


class RnetCandidate(Candidate):
    """rnet (wreq, a reqwest fork, on tokio via pyo3-async-runtimes: a cancelled
    task drops the Rust future, which closes the connection)."""

    name = "rnet"

    async def start(self) -> None:
        import rnet

        self.client = rnet.Client(
            connect_timeout=5, read_timeout=int(IDLE_S), timeout=int(TOTAL_S),
            pool_max_idle_per_host=POOL, pool_max_size=POOL, tcp_nodelay=True,
            allow_redirects=False, http1_only=True,
            gzip=False, brotli=False, deflate=False, zstd=False,
        )  # fmt: skip
        self.url = _upstream()
        self.headers = {"content-type": JSON}

    async def forward(self, body: bytes):
        r = await self.client.post(self.url, body=body, headers=self.headers)
        data = await r.bytes()
        return r.status, JSON, bytes(data)

    async def open_stream(self, body: bytes) -> Streamed:
        r = await self.client.post(self.url, body=body, headers=self.headers)

        async def chunks() -> AsyncIterator[bytes]:
            async with r.stream() as streamer:
                async for chunk in streamer:
                    yield bytes(chunk)

        async def close() -> None:
            await r.close()

        return r.status, JSON, chunks(), close


_CANDIDATES: dict[str, type[Candidate]] = {
    "blacksheep": BlackSheepCandidate,
    "rnet": RnetCandidate,
    "httpx": HttpxCandidate,
    "httpx_aiohttp": HttpxAiohttpCandidate,
    "aiohttp": AiohttpCandidate,
    "aiohttp_lean": AiohttpLeanCandidate,
    "pyreqwest": PyreqwestCandidate,
    "pyreqwest_mt": PyreqwestMTCandidate,
    "pyqwest": PyqwestCandidate,
}


def create_app(client: str) -> Application:
    cand = _CANDIDATES[client]()
    app = Application(show_error_details=True)

    async def on_start(_app: Application) -> None:
        await cand.start()

    async def on_stop(_app: Application) -> None:
        await cand.close()

    app.on_start += on_start
    app.on_stop += on_stop

    async def chat(request: Request) -> Response:
        body = await request.read() or b""
        status, ctype, data = await cand.forward(body)
        return Response(status, None, Content(ctype.encode(), data))

    async def stream(request: Request) -> Response:
        body = await request.read() or b""
        status, ctype, it, close = await cand.open_stream(body)

        async def provider() -> AsyncIterator[bytes]:
            try:
                async for chunk in it:
                    yield chunk
            finally:
                await close()

        return Response(status, None, StreamedContent(ctype.encode(), provider))

    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/stream", stream)
    app.router.add_post("/v1/chat/completions/stream", stream)
    return app


def __getattr__(name: str):
    if name == "app":
        value = create_app(os.environ.get("GW_BENCH_CLIENT", "httpx"))
    elif name.startswith("app_") and name[4:] in _CANDIDATES:
        value = create_app(name[4:])
    else:
        raise AttributeError(name)
    globals()[name] = value
    return value
