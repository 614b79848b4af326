"""Committed streams: move the bytes to the client, end the stream, notice the client leaving.

``routing.open_stream`` decides where a stream comes from and commits it at its
first bytes; from then on a failure cannot be retried: the client gets the
protocol's error event (OpenAI: an ``error`` data event and ``[DONE]``;
Anthropic: an ``error`` event; Responses: ``response.failed``) and the stream closes. Never a made-up
``finish_reason``, never another backend.

    watch = ClientWatch(receive)                 # before waiting on the upstream
    first, rest = await routing.open_stream(route, call, outcome)
    relay = Relay(first, rest, Protocol.OPENAI, outcome, watch, keep=False)
    return stream_response(..., relay.body)      # relay.aclose() runs when the request ends

Each upstream read's events arrive as one chunk (the adapter's ``pump``) and go
out as one ASGI send; nothing is held back waiting for more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from ._fast.responses import response_failed, response_id
from .cache import MAX_ENTRY_BYTES, Save
from .context import Outcome, Protocol
from .errors import GatewayError, UpstreamError, anthropic_error_body, openai_error_body

Receive = Callable[[], Awaitable[dict[str, Any]]]
KEEP_LIMIT = 64 * 1024  # what `logging.bodies` keeps of a stream
DONE_EVENT = b"data: [DONE]\n\n"


def stream_error(exc: GatewayError, protocol: Protocol, model: str = "", events: int = 0) -> bytes:
    """The event that ends a committed stream on a failure, in the client's protocol.

    Responses: ``response.failed``, numbered after the ``events`` already sent,
    for the requested ``model``.
    """
    if protocol is Protocol.ANTHROPIC:
        return b"event: error\ndata: " + anthropic_error_body(exc) + b"\n\n"
    if protocol is Protocol.RESPONSES:
        code = "rate_limit_exceeded" if exc.status == 429 else "server_error"
        return response_failed(response_id(), int(time.time()), model, events, exc.message, code)
    return b"data: " + openai_error_body(exc) + b"\n\n" + DONE_EVENT


def count_events(chunk: bytes) -> int:
    """The SSE events that begin in ``chunk`` with an ``event:`` line (JSON data has no raw LF)."""
    return chunk.count(b"\nevent:") + chunk.startswith(b"event:")


class ClientWatch:
    """Cancels the request's task as soon as the client goes away.

    Started once the request body has been read (from then on the ASGI
    ``receive`` only ever answers ``http.disconnect``), before gw waits on the
    upstream, so a client leaving before the answer is noticed too: the
    upstream request is cancelled with the task.

    With ``late``, the watching starts at its next tick: a whole answer that
    comes sooner never pays for the watcher task (~15 us a request).
    """

    __slots__ = ("left", "_task", "_receive", "_watcher", "_late")

    def __init__(self, receive: Receive, late: LateWatches | None = None) -> None:
        self.left = False
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._receive = receive
        self._watcher: asyncio.Future[None] | None = None
        self._late = late
        if late is not None:
            late.add(self)
        else:
            self.start()

    def start(self) -> None:
        self._late = None
        self._watcher = asyncio.ensure_future(self._watch(self._receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                self.left = True
                self._task.cancel()
                return

    def absorb(self, outcome: Outcome) -> None:
        """Turn our own cancellation (``left`` is true) into a quiet end:
        nobody is there to read an error, and the server should not log one."""
        self._task.uncancel()
        outcome.error = "client disconnected"
        outcome.status = 499

    def stop(self) -> None:
        if self._late is not None:
            self._late.pending.discard(self)
            self._late = None
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None


class LateWatches:
    """Client watches started together, every ``period`` seconds (one timer a worker,
    not one a request): those of the requests still waiting then."""

    __slots__ = ("period", "pending", "_timer")

    def __init__(self, period: float) -> None:
        self.period = period
        self.pending: set[ClientWatch] = set()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, watch: ClientWatch) -> None:
        self.pending.add(watch)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.period, self._tick)

    def _tick(self) -> None:
        self._timer = None
        pending, self.pending = self.pending, set()
        for watch in pending:
            watch.start()


class Relay:
    """A committed stream's body (``body``, the generator BlackSheep iterates) and its end.

    ``keep`` (``logging.bodies``) keeps what was sent, up to 64 KiB, for the log line.
    ``save`` (the response cache's, on a miss) gets every byte sent once the stream
    ended well (not after an error event, nor when the client left), if they are at
    most ``MAX_ENTRY_BYTES``.
    """

    __slots__ = ("_first", "_rest", "_protocol", "_outcome", "_watch", "_keep", "_closed", "_model", "_save")

    def __init__(
        self,
        first: bytes,
        rest: AsyncGenerator[bytes, None],
        protocol: Protocol,
        outcome: Outcome,
        watch: ClientWatch | None,
        keep: bool = False,
        model: str = "",
        save: Save | None = None,
    ) -> None:
        self._first = first
        self._rest = rest
        self._protocol = protocol
        self._outcome = outcome
        self._watch = watch
        self._keep = keep
        self._closed = False
        self._model = model  # the requested name, for a Responses stream's failure event
        self._save = save

    async def body(self) -> AsyncIterator[bytes]:
        outcome = self._outcome
        kept = bytearray(self._first) if self._keep else None
        save = self._save
        sent = bytearray(self._first) if save is not None and len(self._first) <= MAX_ENTRY_BYTES else None
        # a Responses stream's failure event takes the next sequence number
        events = count_events(self._first) if self._protocol is Protocol.RESPONSES else -1
        try:
            yield self._first
            async for chunk in self._rest:
                if kept is not None and len(kept) < KEEP_LIMIT:
                    kept += chunk
                if sent is not None:
                    if len(sent) + len(chunk) <= MAX_ENTRY_BYTES:
                        sent += chunk
                    else:
                        sent = None  # too large to store
                if events >= 0:
                    events += count_events(chunk)
                yield chunk
            if sent is not None and save is not None:  # the stream ended well: cache it
                save(bytes(sent))
        except GatewayError as exc:
            outcome.error = exc.message
            if isinstance(exc, UpstreamError):
                outcome.failed(exc.provider, exc.reason)
                outcome.status = exc.status  # for logs and metrics; the client already has 200
                bound = outcome.bound
                if bound is not None and exc.retryable:
                    bound.breaker.failed(exc.message, exc.retry_after)
            yield stream_error(exc, self._protocol, self._model, events)
        except asyncio.CancelledError:
            watch = self._watch
            if watch is None or not watch.left:
                raise
            watch.absorb(outcome)
        finally:
            if kept is not None:
                outcome.response_body = bytes(kept[:KEEP_LIMIT])
            await self.aclose()

    async def aclose(self) -> None:
        """End the stream (once): stop watching the client, close the upstream.

        Also runs when the body never started (the client left before it).
        """
        if self._closed:
            return
        self._closed = True
        if self._watch is not None:
            self._watch.stop()
        await self._rest.aclose()


__all__ = ["ClientWatch", "Relay", "stream_error"]
