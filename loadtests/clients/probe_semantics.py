"""Probe timeout / cancellation / error semantics of pyreqwest and aiohttp against the fake.

    python -m loadtests.clients.probe_semantics
    python -m loadtests.clients.probe_semantics --pyqwest   # the pyqwest candidate, (a)-(f)

Prints one line per probe: what was raised (class + MRO bits), after how long, and
whether the upstream saw the connection go away (fake's client_disconnects / ss -tn).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import threading
import time
from datetime import timedelta

import aiohttp
from pyreqwest.client import ClientBuilder

from loadtests import _procs
from tests.fakes.runner import FakeUpstream

FAKE: FakeUpstream


def body(stream: bool = False, **fake) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                       "stream": stream, "fake": fake}).encode()


def estab(port: int) -> int:
    out = subprocess.run(["ss", "-tnH", "state", "established", f"( dport = :{port} )"],
                         capture_output=True, text=True).stdout
    return len([ln for ln in out.splitlines() if ln.strip()])


def exc_name(e: BaseException) -> str:
    mro = [c.__name__ for c in type(e).__mro__[1:4]]
    return f"{type(e).__module__}.{type(e).__name__} ({' < '.join(mro)})"


async def timed(label: str, coro) -> None:
    t0 = time.monotonic()
    d0 = FAKE.stats()["client_disconnects"]
    try:
        res = await coro
        out = f"OK {res!r}"[:90]
    except BaseException as e:  # noqa: BLE001
        out = f"RAISED {exc_name(e)}: {str(e)[:80]}"
    dt = time.monotonic() - t0
    await asyncio.sleep(0.15)
    d1 = FAKE.stats()["client_disconnects"]
    print(f"{label:<62} {dt:5.2f}s  {out}  [upstream disconnects +{d1 - d0}, estab={estab(FAKE.port)}]")


# ----------------------------------------------------------------- pyreqwest helpers
def rq_client(**kw):
    b = ClientBuilder().error_for_status(False)
    if "read" in kw:
        b = b.read_timeout(timedelta(seconds=kw["read"]))
    if "total" in kw:
        b = b.timeout(timedelta(seconds=kw["total"]))
    if "mt" in kw:
        b = b.runtime_multithreaded(kw["mt"])
    return b.build()


async def rq_plain(client, data: bytes, per_request_total: float | None = None):
    rb = client.post(FAKE.url + "/v1/chat/completions").body_bytes(data)
    rb = rb.header("content-type", "application/json")
    if per_request_total:
        rb = rb.timeout(timedelta(seconds=per_request_total))
    resp = await rb.build().send()
    return resp.status, len(await resp.bytes())


async def rq_stream(client, data: bytes, first_byte: float | None = None, chunks_before_cancel=None):
    req = client.post(FAKE.url + "/v1/chat/completions").body_bytes(data).header(
        "content-type", "application/json").streamed_read_buffer_limit(1).build_streamed()
    async with contextlib.AsyncExitStack() as stack:
        if first_byte is not None:
            async with asyncio.timeout(first_byte):       # first-byte (headers) deadline
                resp = await stack.enter_async_context(req)
        else:
            resp = await stack.enter_async_context(req)
        n = 0
        while (await resp.body_reader.read_chunk()) is not None:
            n += 1
        return resp.status, n


# ----------------------------------------------------------------- aiohttp helpers
async def ah_plain(session, data: bytes, timeout=None, url=None):
    kw = {"timeout": timeout} if timeout else {}
    async with session.post(url or FAKE.url + "/v1/chat/completions", data=data,
                            headers={"content-type": "application/json"}, **kw) as r:
        return r.status, len(await r.read())


async def ah_stream(session, data: bytes, first_byte: float | None = None, timeout=None):
    kw = {"timeout": timeout} if timeout else {}
    cm = session.post(FAKE.url + "/v1/chat/completions", data=data,
                      headers={"content-type": "application/json"}, **kw)
    if first_byte is not None:
        async with asyncio.timeout(first_byte):
            r = await cm            # returns once the response headers are parsed
    else:
        r = await cm
    async with r:
        n = 0
        async for _ in r.content.iter_any():
            n += 1
        return r.status, n


async def cancel_probe(label: str, opener) -> None:
    """Start a slow stream, read 2 chunks, cancel the task; how fast does the upstream see it?"""
    got = asyncio.Event()
    d0 = FAKE.stats()["client_disconnects"]

    async def reader():
        await opener(got)

    t = asyncio.create_task(reader())
    await asyncio.wait_for(got.wait(), 5)
    await asyncio.sleep(0.3)  # make sure the request is on the wire / being served
    e_before = estab(FAKE.port)
    t0 = time.monotonic()
    t.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await t
    dt_task = time.monotonic() - t0
    deadline = time.monotonic() + 3
    while FAKE.stats()["client_disconnects"] == d0 and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    dt_up = time.monotonic() - t0
    seen = FAKE.stats()["client_disconnects"] > d0
    print(f"{label:<62} task done {dt_task * 1000:.1f}ms; upstream saw disconnect={seen} after "
          f"{dt_up * 1000:.0f}ms; estab before={e_before} after={estab(FAKE.port)}")


SLOW = body(True, chunks=200, chunk_delay_s=0.2)


async def main() -> None:
    url = FAKE.url + "/v1/chat/completions"
    refused = f"http://127.0.0.1:{_procs.free_port()}/v1/chat/completions"
    print("== (1) timeouts: pyreqwest")
    c = rq_client(read=0.5)
    await timed("read_timeout=0.5, stream 10 chunks x 0.3s gap (3s total)",
                rq_stream(c, body(True, chunks=10, chunk_delay_s=0.3)))
    await timed("read_timeout=0.5, stream gap 1.0s (idle > read_timeout)",
                rq_stream(c, body(True, chunks=10, chunk_delay_s=1.0)))
    await timed("read_timeout=0.5, headers delayed 1.0s (delay_s)",
                rq_stream(c, body(True, chunks=3, delay_s=1.0)))
    await timed("read_timeout=0.5, non-stream headers delayed 1.0s",
                rq_plain(c, body(delay_s=1.0)))
    c = rq_client(total=1.0)
    await timed("client timeout=1.0 (total), stream 10 x 0.3s",
                rq_stream(c, body(True, chunks=10, chunk_delay_s=0.3)))
    c = rq_client()
    await timed("per-request .timeout(0.5), non-stream delay_s=2",
                rq_plain(c, body(delay_s=2.0), per_request_total=0.5))
    await timed("asyncio.timeout(0.5) around build_streamed() entry, delay_s=2",
                rq_stream(c, body(True, chunks=3, delay_s=2.0), first_byte=0.5))
    await timed("asyncio.timeout(0.5) entry, headers fast, body 10x0.3s (ok?)",
                rq_stream(c, body(True, chunks=10, chunk_delay_s=0.3), first_byte=0.5))
    await timed("asyncio.timeout(0.5) entry, fault=hang",
                rq_stream(c, body(True, fault="hang"), first_byte=0.5))
    await timed("  next request on same client works", rq_plain(c, body()))

    print("== (1) timeouts: aiohttp")
    s = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
    idle = aiohttp.ClientTimeout(total=None, sock_read=0.5)
    await timed("sock_read=0.5, stream 10 x 0.3s gap",
                ah_stream(s, body(True, chunks=10, chunk_delay_s=0.3), timeout=idle))
    await timed("sock_read=0.5, stream gap 1.0s",
                ah_stream(s, body(True, chunks=10, chunk_delay_s=1.0), timeout=idle))
    await timed("sock_read=0.5, headers delayed 1.0s",
                ah_stream(s, body(True, chunks=3, delay_s=1.0), timeout=idle))
    await timed("ClientTimeout(total=1.0), stream 10 x 0.3s",
                ah_stream(s, body(True, chunks=10, chunk_delay_s=0.3),
                          timeout=aiohttp.ClientTimeout(total=1.0)))
    await timed("ClientTimeout(total=0.5), non-stream delay_s=2",
                ah_plain(s, body(delay_s=2.0), timeout=aiohttp.ClientTimeout(total=0.5)))
    await timed("asyncio.timeout(0.5) around session.post(), delay_s=2",
                ah_stream(s, body(True, chunks=3, delay_s=2.0), first_byte=0.5,
                          timeout=aiohttp.ClientTimeout(total=None, sock_read=5)))
    await timed("asyncio.timeout(0.5) around post(), headers fast, body 10x0.3s",
                ah_stream(s, body(True, chunks=10, chunk_delay_s=0.3), first_byte=0.5,
                          timeout=aiohttp.ClientTimeout(total=None, sock_read=5)))
    await timed("  next request on same session works", ah_plain(s, body()))

    print("== (2) cancellation of the task reading a stream")

    async def rq_open(got):
        req = c.post(url).body_bytes(SLOW).header("content-type", "application/json")
        req = req.streamed_read_buffer_limit(1).build_streamed()
        async with req as resp:
            n = 0
            while (await resp.body_reader.read_chunk()) is not None:
                n += 1
                if n == 2:
                    got.set()

    async def ah_open(got):
        async with s.post(url, data=SLOW, headers={"content-type": "application/json"},
                          timeout=aiohttp.ClientTimeout(total=None)) as r:
            n = 0
            async for _ in r.content.iter_any():
                n += 1
                if n == 2:
                    got.set()

    async def rq_open_hdr(got):
        req = c.post(url).body_bytes(body(True, fault="hang")).header("content-type", "application/json")
        req = req.streamed_read_buffer_limit(1).build_streamed()
        got.set()
        async with req:
            pass

    async def ah_open_hdr(got):
        got.set()
        async with s.post(url, data=body(True, fault="hang"), timeout=aiohttp.ClientTimeout(total=None)):
            pass

    await cancel_probe("pyreqwest: cancel while reading body", rq_open)
    await cancel_probe("pyreqwest: cancel while awaiting headers (hang)", rq_open_hdr)
    await cancel_probe("aiohttp: cancel while reading body", ah_open)
    await cancel_probe("aiohttp: cancel while awaiting headers (hang)", ah_open_hdr)

    print("== (3) exceptions")
    rq_ref = c.post(refused).body_bytes(body()).build().send()
    await timed("pyreqwest: connection refused", rq_ref)
    await timed("pyreqwest: reset_before_headers", rq_plain(c, body(fault="reset_before_headers")))
    await timed("pyreqwest: close_before_headers", rq_plain(c, body(fault="close_before_headers")))
    await timed("pyreqwest: non-stream reset mid-body (.send())", rq_plain(c, body(fault="reset_mid_stream")))
    await timed("pyreqwest: non-stream truncate (close mid-body)", rq_plain(c, body(fault="truncate")))
    reset, truncate = body(True, fault="reset_mid_stream"), body(True, fault="truncate")
    await timed("pyreqwest: stream reset mid-body (read_chunk)", rq_stream(c, reset))
    await timed("aiohttp: connection refused", ah_plain(s, b"{}", url=refused))
    await timed("aiohttp: reset_before_headers", ah_plain(s, body(fault="reset_before_headers")))
    await timed("aiohttp: close_before_headers", ah_plain(s, body(fault="close_before_headers")))
    await timed("aiohttp: non-stream reset mid-body (read())", ah_plain(s, body(fault="reset_mid_stream")))
    await timed("aiohttp: non-stream truncate (close mid-body)", ah_plain(s, body(fault="truncate")))
    await timed("aiohttp: stream reset mid-body (iter_any)", ah_stream(s, reset))
    await timed("aiohttp: stream ends cleanly without [DONE] (truncate)", ah_stream(s, truncate))
    await timed("pyreqwest: stream ends cleanly without [DONE] (truncate)", rq_stream(c, truncate))
    await s.close()
    await c.close()

    print("== (4) threads")
    def nthreads() -> int:
        return threading.active_count(), len(__import__("os").listdir("/proc/self/task"))
    print("before any client:", nthreads())
    c1 = rq_client(mt=False)
    await rq_plain(c1, body())
    print("after single-threaded client + 1 request (py threads, os threads):", nthreads())
    c2 = rq_client(mt=True)
    await rq_plain(c2, body())
    print("after multithreaded client + 1 request:", nthreads())
    await c1.close()
    await c2.close()




def e2e_disconnect(clients=("pyreqwest", "aiohttp", "httpx")) -> None:
    """Client disconnects from the *proxy* mid-stream: does the proxy drop the upstream?"""
    import socket
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    with FakeUpstream() as fake:
        for name in clients:
            port = _procs.free_port()
            granian = str(Path(_procs.PY).with_name("granian"))
            proc = _procs.start(
                [granian, "--interface", "asgi", "--loop", "uvloop", "--workers", "1", "--no-ws",
                 "--http", "1", "--port", str(port), "--log-level", "warning",
                 "loadtests.clients.proxies:app"],
                env={"GW_BENCH_CLIENT": name, "UPSTREAM_URL": fake.url}, cwd=str(root))
            try:
                _procs.wait_port(port, proc=proc)
                d0 = fake.stats()["client_disconnects"]
                data = body(True, chunks=200, chunk_delay_s=0.2)
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"POST /stream HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                          b"content-length: %d\r\n\r\n%s" % (len(data), data))
                got = b""
                while got.count(b"data:") < 2:
                    got += s.recv(65536)
                e_before = estab(fake.port)
                t0 = time.monotonic()
                s.close()
                seen = False
                while time.monotonic() - t0 < 5:
                    if fake.stats()["client_disconnects"] > d0:
                        seen = True
                        break
                    time.sleep(0.01)
                print(f"e2e {name:<10} proxy client closed mid-stream -> upstream disconnect seen={seen} "
                      f"after {(time.monotonic() - t0) * 1000:.0f}ms; upstream estab before={e_before} "
                      f"after={estab(fake.port)}")
            finally:
                _procs.terminate(proc)


# ================================================================= pyqwest
# python -m loadtests.clients.probe_semantics --pyqwest    (probes (a)-(f) below)
#
# pyqwest (0.12) has no per-request timeout on the async client: deadlines are
# asyncio.timeout(); the transport has connect_timeout / read_timeout (per read,
# also until the headers) / timeout (whole request).

def pq_transport(**kw):
    from pyqwest import HTTPTransport

    opts = dict(connect_timeout=5.0, pool_idle_timeout=90.0, pool_max_idle_per_host=256,
                follow_redirects=False, enable_gzip=False, enable_brotli=False,
                enable_zstd=False, enable_otel=False)
    opts.update(kw)
    return HTTPTransport(**opts)


JSON_HDR = {"content-type": "application/json"}


async def pq_plain(client, data: bytes, url: str | None = None):
    r = await client.post(url or FAKE.url + "/v1/chat/completions", JSON_HDR, data)
    return r.status, len(r.content)


async def pq_stream(client, data: bytes, first_byte: float | None = None, idle: float | None = None,
                    stamps: list | None = None):
    """client.stream() entry bounded by first_byte, each chunk by idle (asyncio.timeout)."""
    t0 = time.monotonic()
    cm = client.stream("POST", FAKE.url + "/v1/chat/completions", JSON_HDR, data)
    async with contextlib.AsyncExitStack() as stack:
        async with asyncio.timeout(first_byte):
            resp = await stack.enter_async_context(cm)
        if stamps is not None:
            stamps.append(("headers", round(time.monotonic() - t0, 3)))
        it = aiter(resp.content)
        n = 0
        while True:
            try:
                async with asyncio.timeout(idle):
                    chunk = await anext(it)
            except StopAsyncIteration:
                break
            n += 1
            if stamps is not None:
                stamps.append((bytes(chunk)[:18].decode(errors="replace"), round(time.monotonic() - t0, 3)))
        return resp.status, n


async def cancel_after(label: str, coro_factory, after: float = 0.3) -> None:
    """Run coro in a task, cancel it after `after` s; how fast does the upstream see it go?"""
    d0 = FAKE.stats()["client_disconnects"]
    t = asyncio.create_task(coro_factory())
    await asyncio.sleep(after)
    e_before = estab(FAKE.port)
    t0 = time.monotonic()
    t.cancel()
    try:
        await t
        res = "task finished normally?!"
    except asyncio.CancelledError:
        res = "CancelledError"
    except BaseException as e:  # noqa: BLE001
        res = f"RAISED {exc_name(e)}"
    dt_task = time.monotonic() - t0
    deadline = time.monotonic() + 3
    while FAKE.stats()["client_disconnects"] == d0 and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    seen = FAKE.stats()["client_disconnects"] > d0
    print(f"{label:<66} {res}; task done {dt_task * 1000:.1f}ms; upstream disconnect={seen} "
          f"after {(time.monotonic() - t0) * 1000:.0f}ms; estab before={e_before} after={estab(FAKE.port)}")


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


async def pyqwest_main() -> None:
    from importlib.metadata import version

    import pyqwest
    from pyqwest import Client, Request

    print(f"pyqwest {version('pyqwest')}; os threads before any request: {os_threads()}")
    url = FAKE.url + "/v1/chat/completions"
    refused = f"http://127.0.0.1:{_procs.free_port()}/v1/chat/completions"
    tr = pq_transport()
    c = Client(tr)
    await timed("sanity: post() non-stream", pq_plain(c, body()))
    print(f"os threads after first request: {os_threads()}")

    print("== (a) task cancelled before headers (delay_s=2, cancel at 0.3s)")
    await cancel_after("pyqwest client.post()", lambda: pq_plain(c, body(delay_s=2)))
    await cancel_after("pyqwest client.stream() entry", lambda: pq_stream(c, body(True, delay_s=2)))

    async def via_transport():
        r = await tr.execute(Request("POST", url, pyqwest.Headers(JSON_HDR), body(delay_s=2)))
        return r.status
    await cancel_after("pyqwest transport.execute()", via_transport)
    rq = rq_client()
    await cancel_after("pyreqwest (reference) send()", lambda: rq_plain(rq, body(delay_s=2)))
    await cancel_after("pyreqwest (reference) build_streamed() entry",
                       lambda: rq_stream(rq, body(True, delay_s=2)))
    await timed("  next request on same pyqwest client works", pq_plain(c, body()))

    print("== (b) asyncio.timeout(0.5) around getting the response, fault=hang")

    async def post_with_timeout(data):
        async with asyncio.timeout(0.5):
            return await pq_plain(c, data)
    await timed("asyncio.timeout(0.5) around client.post(), hang", post_with_timeout(body(fault="hang")))
    await timed("asyncio.timeout(0.5) around client.stream() entry, hang",
                pq_stream(c, body(True, fault="hang"), first_byte=0.5))
    await timed("same, headers fast, body 10x0.3s (must be OK: timeout covers entry only)",
                pq_stream(c, body(True, chunks=10, chunk_delay_s=0.3), first_byte=0.5))
    await timed("idle asyncio.timeout(0.5) per chunk, gap 1.0s",
                pq_stream(c, body(True, chunks=10, chunk_delay_s=1.0), first_byte=5, idle=0.5))
    await timed("idle asyncio.timeout(0.5) per chunk, stall_mid_stream",
                pq_stream(c, body(True, fault="stall_mid_stream"), first_byte=5, idle=0.5))
    c_rt = Client(pq_transport(read_timeout=0.5))
    await timed("transport read_timeout=0.5, post(), hang", pq_plain(c_rt, body(fault="hang")))
    await timed("transport read_timeout=0.5, stream gap 0.3s (ok?)",
                pq_stream(c_rt, body(True, chunks=10, chunk_delay_s=0.3)))
    await timed("transport read_timeout=0.5, stream gap 1.0s",
                pq_stream(c_rt, body(True, chunks=10, chunk_delay_s=1.0)))
    c_tt = Client(pq_transport(timeout=1.0))
    await timed("transport timeout=1.0 (total), stream 10x0.3s",
                pq_stream(c_tt, body(True, chunks=10, chunk_delay_s=0.3)))
    await timed("  next request on same client works", pq_plain(c, body()))

    print("== (c) cancellation while reading a slow stream body (200 x 0.2s)")
    await cancel_after("pyqwest: cancel while iterating resp.content",
                       lambda: pq_stream(c, SLOW), after=0.7)

    async def early_exit():  # leave the `async with` after 2 chunks (closes the response)
        async with c.stream("POST", url, JSON_HDR, SLOW) as r:
            n = 0
            async for _ in r.content:
                n += 1
                if n == 2:
                    break
        return n
    await timed("pyqwest: break out of `async with client.stream()` after 2 chunks", early_exit())
    await timed("  next request on same client works", pq_plain(c, body()))

    print("== (d) chunk timing, chunk_delay_s=0.3, 5 content chunks (t from request start)")
    stamps: list = []
    await pq_stream(c, body(True, chunks=5, chunk_delay_s=0.3), stamps=stamps)
    for what, t in stamps:
        print(f"   {t:6.3f}s  {what!r}")
    stamps = []
    await pq_stream(c, body(True, chunks=3, delay_s=0.5, chunk_delay_s=0.3), stamps=stamps)
    print("   with delay_s=0.5 before headers:", stamps[:3], "...")

    print("== (e) exceptions")
    await timed("connection refused (post)", pq_plain(c, body(), url=refused))
    await timed("connection refused (stream)", c.stream("POST", refused, JSON_HDR, body()).__aenter__())
    await timed("reset_before_headers (post)", pq_plain(c, body(fault="reset_before_headers")))
    await timed("reset_before_headers (stream)", pq_stream(c, body(True, fault="reset_before_headers")))
    await timed("close_before_headers (post)", pq_plain(c, body(fault="close_before_headers")))
    await timed("reset_mid_stream non-stream body (post)", pq_plain(c, body(fault="reset_mid_stream")))
    await timed("reset_mid_stream (stream iteration)", pq_stream(c, body(True, fault="reset_mid_stream")))
    await timed("truncate non-stream (content-length short)", pq_plain(c, body(fault="truncate")))
    await timed("truncate stream (ends cleanly without [DONE])", pq_stream(c, body(True, fault="truncate")))
    await timed("read_timeout=0.5 hang -> class", pq_plain(c_rt, body(fault="hang")))
    await timed("read_timeout=0.5 stream gap 1.0 -> class",
                pq_stream(c_rt, body(True, chunks=3, chunk_delay_s=1.0)))
    await timed("transport timeout=1.0 hang -> class", pq_plain(c_tt, body(fault="hang")))
    await timed("status 500 (no exception expected)", pq_plain(c, body(status=500)))

    print("== (f) threads")
    print(f"os threads now: {os_threads()} (python threads: {threading.active_count()}); "
          f"TOKIO_WORKER_THREADS={os.environ.get('TOKIO_WORKER_THREADS')!r}; nproc={os.cpu_count()}")
    await tr.aclose()


if __name__ == "__main__":
    import sys

    import uvloop

    if "--pyqwest" in sys.argv:
        with FakeUpstream() as FAKE:
            uvloop.run(pyqwest_main())
    elif "--e2e" in sys.argv:
        e2e_disconnect()
    else:
        with FakeUpstream() as FAKE:
            uvloop.run(main())
