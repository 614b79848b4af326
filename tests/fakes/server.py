"""What every wire-level fake upstream shares: the recorded state, HTTP/1.1
head and chunk bytes, the split/paced stream ``Writer``, the ``FAKE {json}``
directive and the process entry point (``LISTENING <port>``, SIGTERM).

The process-wide fault mode (``POST /_fake/mode``) lives in ``State``: a
directive every request without its own follows, for ``times`` requests or
until changed (see ``tests.fakes.openai_server``).

The protocol base (``FakeProtocol``) lives in ``tests.fakes.openai_server``,
the first fake; the Anthropic, Gemini and Ollama fakes subclass it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import re
import signal
import sys
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

RESET_GRACE_S = 0.05  # let already-sent bytes reach the client before a RST

MID_STREAM_FAULTS = {
    "reset_mid_stream",
    "stall_mid_stream",
    "garbage_mid_stream",
    "error_event",
    "truncate",
}
BEFORE_HEADERS_FAULTS = {"reset_before_headers", "close_before_headers", "hang"}

WORD_RE = re.compile(r"\S+\s*")
_REASONS = {s.value: s.phrase for s in HTTPStatus}
_DECODER = json.JSONDecoder()


class State:
    def __init__(self, api_key: str | None) -> None:
        self.api_key = api_key
        self.bearer = f"Bearer {api_key}" if api_key else None
        self.recorded: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)
        self.stats = self._zero()
        self._prefix = os.urandom(4).hex()
        self._n = 0
        self.mode: dict[str, Any] = {}
        self.mode_left: int | None = None  # None: until changed
        self.responses: dict[str, Any] = {}  # the OpenAI fake's Responses API answers, by id

    @staticmethod
    def _zero() -> dict[str, int]:
        return {"requests": 0, "streams_started": 0, "streams_completed": 0, "client_disconnects": 0}

    def reset(self) -> None:
        self.recorded.clear()
        self.stats = self._zero()
        self.set_mode({})

    def set_mode(self, obj: dict[str, Any]) -> None:
        """``{...directive, "times"?: N}`` from ``POST /_fake/mode``; ``{}`` clears.

        Raises ValueError on a mode the fakes cannot act out."""
        mode = dict(obj)
        times = mode.pop("times", None)
        if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
            raise ValueError(f"times: expected a positive integer, got {times!r}")
        status = mode.get("status")
        if status is not None and (not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599):
            raise ValueError(f"status: expected an error status 400..599, got {status!r}")
        fault = mode.get("fault")
        if fault is not None and fault not in BEFORE_HEADERS_FAULTS and fault not in MID_STREAM_FAULTS:
            raise ValueError(f"fault: unknown fault {fault!r}")
        for key in ("delay_s", "chunk_delay_s"):
            value = mode.get(key)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{key}: expected a number >= 0, got {value!r}")
        if "retry_after" in mode:
            if not isinstance(mode["retry_after"], (str, int)) or isinstance(mode["retry_after"], bool):
                raise ValueError(f"retry_after: expected a string, got {mode['retry_after']!r}")
            mode["retry_after"] = str(mode["retry_after"])
        self.mode = mode
        self.mode_left = times if mode else None

    def mode_view(self) -> dict[str, Any]:
        """The mode as ``GET /_fake/mode`` shows it: ``times`` is what is left."""
        if not self.mode:
            return {}
        return {**self.mode, "times": self.mode_left} if self.mode_left is not None else dict(self.mode)

    def take_mode(self) -> dict[str, Any] | None:
        """The directive for a request without its own; counts down ``times``."""
        mode = self.mode
        if not mode:
            return None
        if self.mode_left is not None:
            self.mode_left -= 1
            if self.mode_left <= 0:
                self.mode, self.mode_left = {}, None
        return mode

    def next_ids(self) -> tuple[str, str]:
        self._n += 1
        n = self._n
        return f"req_{self._prefix}{n:024x}", f"chatcmpl-fake{self._prefix}{n:016x}"


def head_bytes(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    lines.extend(f"{k}: {v}" for k, v in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def directive(text: str) -> tuple[dict | None, str]:
    """``FAKE {json} rest`` -> (the object, rest); raises ValueError on a bad object."""
    if not text.startswith("FAKE "):
        return None, text
    raw = text[5:].lstrip()
    try:
        obj, end = _DECODER.raw_decode(raw)
    except json.JSONDecodeError:
        obj, end = None, 0
    if not isinstance(obj, dict):
        raise ValueError("FAKE must be followed by a JSON object")
    return obj, raw[end:].strip()


class Writer:
    """Writes SSE bytes as HTTP chunks: one per event, or split into pieces."""

    def __init__(self, transport: asyncio.Transport, fake: dict) -> None:
        self.t = transport
        self.split = fake.get("split")
        self.rng = random.Random(fake.get("seed", 0))
        self.pending = b""
        self.next = self.rng.randint(1, 7)
        self.chunk_delay = float(fake.get("chunk_delay_s") or 0)

    async def send(self, data: bytes) -> None:
        if self.split == "bytes":
            for i in range(len(data)):
                self.t.write(http_chunk(data[i : i + 1]))
                await asyncio.sleep(0)
        elif self.split == "random":
            # cuts run across event boundaries, like real network reads
            self.pending += data
            while len(self.pending) >= self.next:
                piece, self.pending = self.pending[: self.next], self.pending[self.next :]
                self.t.write(http_chunk(piece))
                self.next = self.rng.randint(1, 7)
                await asyncio.sleep(0)
        else:
            self.t.write(http_chunk(data))

    async def pause(self) -> None:
        """``chunk_delay_s`` between two events: what is pending goes out first."""
        if self.chunk_delay > 0:
            await self.flush()
            await asyncio.sleep(self.chunk_delay)

    async def flush(self) -> None:
        if self.pending:
            piece, self.pending = self.pending, b""
            self.t.write(http_chunk(piece))
            await asyncio.sleep(0)

    async def end(self) -> None:
        await self.flush()
        self.t.write(b"0\r\n\r\n")


# ---------------------------------------------------------------- main


async def serve(protocol: Callable[[State], asyncio.Protocol], host: str, port: int, api_key: str | None) -> None:
    loop = asyncio.get_running_loop()
    state = State(api_key)
    server = await loop.create_server(lambda: protocol(state), host, port, reuse_address=True, backlog=2048)
    sys.stdout.write(f"LISTENING {server.sockets[0].getsockname()[1]}\n")
    sys.stdout.flush()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    try:
        await stop
    finally:
        server.close()


def run(protocol: Callable[[State], asyncio.Protocol], description: str, argv: list[str] | None = None) -> None:
    """The fake's process: ``--host``, ``--port`` (0: any), ``--api-key``; uvloop when installed."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--api-key", default=None)
    args = p.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(protocol, args.host, args.port, args.api_key))
    else:
        uvloop.run(serve(protocol, args.host, args.port, args.api_key))
