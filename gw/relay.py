"""Committed streams: move the bytes to the client, end the stream, notice the client leaving.

``routing.open_stream`` decides where a stream comes from and commits it at its
first bytes; from then on a failure cannot be retried: the client gets the
protocol's error event (OpenAI: an ``error`` data event and ``[DONE]``;
Anthropic: an ``error`` event) and the stream closes. Never a made-up
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
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from .context import Outcome, Protocol
from .errors import GatewayError, UpstreamError, anthropic_error_body, openai_error_body

Receive = Callable[[], Awaitable[dict[str, Any]]]
_KEEP_LIMIT = 64 * 1024
DONE_EVENT = b"data: [DONE]\n\n"


def stream_error(exc: GatewayError, protocol: Protocol) -> bytes:
    """The event that ends a committed stream on a failure, in the client's protocol."""
    if protocol is Protocol.ANTHROPIC:
        return b"event: error\ndata: " + anthropic_error_body(exc) + b"\n\n"
    return b"data: " + openai_error_body(exc) + b"\n\n" + DONE_EVENT


class ClientWatch:
    """Cancels the request's task as soon as the client goes away.

    Started once the request body has been read (from then on the ASGI
    ``receive`` only ever answers ``http.disconnect``), before gw waits on the
    upstream, so a client leaving before the answer is noticed too: the
    upstream request is cancelled with the task.
    """

    __slots__ = ("left", "_task", "_watcher")

    def __init__(self, receive: Receive) -> None:
        self.left = False
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._watcher: asyncio.Future[None] | None = asyncio.ensure_future(self._watch(receive))

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
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None


class Relay:
    """A committed stream's body (``body``, the generator BlackSheep iterates) and its end.

    ``keep`` (``logging.bodies``) keeps what was sent, up to 64 KiB, for the log line.
    """

    __slots__ = ("_first", "_rest", "_protocol", "_outcome", "_watch", "_keep", "_closed")

    def __init__(
        self,
        first: bytes,
        rest: AsyncGenerator[bytes, None],
        protocol: Protocol,
        outcome: Outcome,
        watch: ClientWatch | None,
        keep: bool = False,
    ) -> None:
        self._first = first
        self._rest = rest
        self._protocol = protocol
        self._outcome = outcome
        self._watch = watch
        self._keep = keep
        self._closed = False

    async def body(self) -> AsyncIterator[bytes]:
        outcome = self._outcome
        kept = bytearray(self._first) if self._keep else None
        try:
            yield self._first
            async for chunk in self._rest:
                if kept is not None and len(kept) < _KEEP_LIMIT:
                    kept += chunk
                yield chunk
        except GatewayError as exc:
            outcome.error = exc.message
            if isinstance(exc, UpstreamError):
                outcome.failed(exc.provider, exc.reason)
                outcome.status = exc.status  # for logs and metrics; the client already has 200
                bound = outcome.bound
                if bound is not None and exc.retryable:
                    bound.breaker.failed(exc.message, exc.retry_after)
            yield stream_error(exc, self._protocol)
        except asyncio.CancelledError:
            watch = self._watch
            if watch is None or not watch.left:
                raise
            watch.absorb(outcome)
        finally:
            if kept is not None:
                outcome.response_body = bytes(kept[:_KEEP_LIMIT])
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
