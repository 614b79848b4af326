"""gw in the test's own event loop: ``create_app`` called over ASGI, wire fakes on loopback.

    async def scenario():
        async with fake_server(OpenAIFake) as fake, Gateway(config(fake)) as gw:
            got = await gw.post("/v1/chat/completions", {...})
            got.status, got.json(), got.sends       # sends: the ASGI body messages, one per send
    asyncio.run(scenario())

No Granian and no process: a test runs in tens of milliseconds, and a clock can
be injected (``Gateway(text, clock=clock)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson

from gw.app import GatewayApp, create_app
from gw.config import load_tables
from tests.fakes.server import State

FAKE_KEY = "sk-fake-upstream-key-0123456789abcdef"


class Fake:
    """A wire fake's server in this loop: ``url``, and its recorded ``state``."""

    def __init__(self, server: asyncio.Server, state: State) -> None:
        self.server = server
        self.state = state
        self.port = server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def set_mode(self, **directive: Any) -> None:
        self.state.set_mode(directive)


@contextlib.asynccontextmanager
async def fake_server(
    protocol: Callable[[State], asyncio.Protocol], api_key: str | None = FAKE_KEY
) -> AsyncIterator[Fake]:
    """One of tests/fakes' protocols (``OpenAI``, ``Anthropic``, ...) listening on 127.0.0.1."""
    state = State(api_key)
    loop = asyncio.get_running_loop()
    made: list[asyncio.Protocol] = []

    def factory() -> asyncio.Protocol:
        made.append(protocol(state))
        return made[-1]

    server = await loop.create_server(factory, "127.0.0.1", 0)
    try:
        yield Fake(server, state)
    finally:
        server.close()
        for proto in made:  # connections gw kept alive in its pools
            transport = getattr(proto, "transport", None)
            if transport is not None:
                transport.close()
        await asyncio.sleep(0)


class Answer:
    """What the app sent for one request."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.sends: list[bytes] = []  # each http.response.body message's bytes, in order

    @property
    def body(self) -> bytes:
        return b"".join(self.sends)

    def json(self) -> Any:
        return orjson.loads(self.body)

    def events(self) -> list[bytes]:
        """The SSE events' data payloads."""
        return [
            line[6:]
            for block in self.body.split(b"\n\n")
            for line in block.split(b"\n")
            if line.startswith(b"data: ")
        ]


class Gateway:
    """``create_app`` on a config text, started and stopped around an ``async with``."""

    def __init__(self, config_text: str, **options: Any) -> None:
        self._dir = tempfile.TemporaryDirectory()
        path = Path(self._dir.name) / "config.yaml"
        path.write_text(config_text)
        self.app: GatewayApp = create_app(load_tables(str(path)), str(path), **options)

    async def __aenter__(self) -> Gateway:
        await self.app.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.app.stop()
        self._dir.cleanup()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        leave: asyncio.Event | None = None,
        leave_at_start: bool = False,
    ) -> Answer:
        """One request over ASGI. ``leave``: set it to make the client disconnect;
        ``leave_at_start``: the client is gone when the response head is sent."""
        raw = orjson.dumps(body) if body is not None else b""
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
        head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": head,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        sent_body = False
        gone = leave or asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        answer = Answer()

        async def send(message: dict[str, Any]) -> None:
            if leave_at_start:  # as a server does when the connection is gone
                gone.set()
                raise OSError("client disconnected")
            if gone.is_set():
                return
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                answer.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
            elif message["type"] == "http.response.body" and message.get("body"):
                answer.sends.append(message["body"])

        await self.app(scope, receive, send)
        return answer

    async def post(self, path: str, body: Any, **kw: Any) -> Answer:
        return await self.request("POST", path, body, **kw)


def config(providers: str, models: str, routing: str = "") -> str:
    """A config text: ``providers`` and ``models`` are YAML blocks (indented by 2)."""
    return f"providers:\n{providers}\nmodels:\n{models}\n{routing}"
