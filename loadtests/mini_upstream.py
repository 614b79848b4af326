"""Minimal raw-asyncio OpenAI-ish upstream (fallback + fault injection for client tests).

    python -m loadtests.mini_upstream --port 0      # prints "LISTENING <port>"

POST /v1/chat/completions with a JSON body; honours
  "stream": true, "fake": {"chunks": N, "chunk_delay_s": s, "headers_delay_s": s,
                           "fault": "hang" | "reset_before_headers" | "reset_mid_body" | "hang_mid_body"}
GET /_fake/stats -> {"requests": n, "client_disconnects": n, "open_connections": n}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import struct
import time

STATS = {"requests": 0, "client_disconnects": 0, "open_connections": 0}
BODY = (
    b'{"id":"chatcmpl-fake","object":"chat.completion","created":1700000000,'
    b'"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"Hello! How can I help you today?"},"logprobs":null,"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}'
)


def _chunk(i: int) -> bytes:
    ev = (b'data: {"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1700000000,'
          b'"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"tok%d "},'
          b'"finish_reason":null}]}\n\n' % i)
    return b"%x\r\n%s\r\n" % (len(ev), ev)


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    STATS["open_connections"] += 1
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            clen = 0
            for ln in lines[1:]:
                if ln[:15].lower() == "content-length:":
                    clen = int(ln[15:])
            body = await reader.readexactly(clen) if clen else b""
            STATS["requests"] += 1
            if method == "GET" and path.startswith("/_fake/stats"):
                data = json.dumps(STATS).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(data), data))
                continue
            try:
                req = json.loads(body) if body else {}
            except ValueError:
                req = {}
            fake = req.get("fake") or {}
            fault = fake.get("fault")
            if fake.get("headers_delay_s"):
                await asyncio.sleep(fake["headers_delay_s"])
            if fault == "hang":
                await asyncio.sleep(3600)
            if fault == "reset_before_headers":
                _reset(writer)
                return
            if req.get("stream"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                             b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")
                n = int(fake.get("chunks", 5))
                delay = float(fake.get("chunk_delay_s", 0))
                for i in range(n):
                    writer.write(_chunk(i))
                    if i == n // 2 and fault == "reset_mid_body":
                        await writer.drain()
                        _reset(writer)
                        return
                    if i == n // 2 and fault == "hang_mid_body":
                        await writer.drain()
                        await asyncio.sleep(3600)
                    if delay:
                        await writer.drain()
                        await asyncio.sleep(delay)
                writer.write(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
            else:
                if fault == "reset_mid_body":
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY[:50]))
                    await writer.drain()
                    _reset(writer)
                    return
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        STATS["client_disconnects"] += 1  # peer closed (idle close or mid-request)
    finally:
        STATS["open_connections"] -= 1
        writer.close()


async def main(port: int) -> None:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        pass
    srv = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print("LISTENING", srv.sockets[0].getsockname()[1], flush=True)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    try:
        import uvloop
        uvloop.run(main(a.port))
    except ImportError:
        asyncio.run(main(a.port))
