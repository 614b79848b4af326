"""Streams: the commit point, the error event, ``[DONE]``, client disconnects.

Before the first byte goes to the client a failure is raised (so routing can
retry or fall back); after it, the client gets one error event and ``[DONE]``
and the stream closes: never a made-up ``finish_reason``, never another backend.

    first, events = await open_stream(runtime, route, body, ctx)   # may raise
    return wire.stream_response(ctx, relay(first, events, ctx, receive, done))
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Awaitable, Callable


from ._fast.convert import DONE_EVENT, error_event
from .context import RequestContext
from .errors import GatewayError, UpstreamError, UpstreamUnavailable
from .routing import Bound, Route, attempt
from .runtime import Runtime

Receive = Callable[[], Awaitable[dict[str, Any]]]


async def open_stream(
    runtime: Runtime, route: Route, body: dict[str, Any], ctx: RequestContext
) -> tuple[bytes, AsyncIterator[bytes]]:
    """The first bytes of a stream and the generator of the rest, with retries."""

    async def first_of(bound: Bound) -> tuple[bytes, AsyncIterator[bytes]]:
        events = bound.adapter.chat_stream(body, bound.target, ctx)
        started = time.perf_counter()
        try:
            first = await anext(events)
        except StopAsyncIteration:
            raise UpstreamUnavailable(
                f"provider '{bound.provider.name}' sent an empty stream",
                provider=bound.provider.name,
                retryable=True,
            ) from None
        except BaseException:
            await events.aclose()
            raise
        finally:
            ctx.upstream_s += time.perf_counter() - started
        ctx.ttft_s = ctx.elapsed()
        return first, events

    return await attempt(route, runtime.retries, runtime.retry_on, ctx, first_of)


class _Disconnect:
    """Cancels the streaming task as soon as the client goes away."""

    __slots__ = ("fired", "_watcher")

    def __init__(self, receive: Receive) -> None:
        self.fired = False
        task = asyncio.current_task()
        assert task is not None
        self._watcher = asyncio.ensure_future(self._watch(receive, task))

    async def _watch(self, receive: Receive, task: asyncio.Task[Any]) -> None:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                self.fired = True
                task.cancel()
                return

    def stop(self) -> None:
        self._watcher.cancel()


def relay(
    first: bytes,
    events: AsyncIterator[bytes],
    ctx: RequestContext,
    receive: Receive | None,
    done: Callable[[RequestContext], None],
    error_body: Callable[[GatewayError], bytes] | None = None,
) -> Callable[[], AsyncIterator[bytes]]:
    """The body generator of a committed stream (BlackSheep wants the function)."""

    async def body() -> AsyncIterator[bytes]:
        disconnect = _Disconnect(receive) if receive is not None else None
        try:
            yield first
            async for chunk in events:
                yield chunk
        except GatewayError as exc:
            ctx.error = exc.message
            if isinstance(exc, UpstreamError):
                ctx.status = exc.status  # for logs and metrics; the client already has 200
            yield error_body(exc) if error_body else openai_stream_error(exc)
        except asyncio.CancelledError:
            if disconnect is None or not disconnect.fired:
                raise
            # Our own cancellation: the client left. Nobody is there to read an
            # error, so end quietly instead of letting the server log a traceback.
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            ctx.error = "client disconnected"
            ctx.status = 499
        finally:
            if disconnect is not None:
                disconnect.stop()
            await events.aclose()
            done(ctx)

    return body


def openai_stream_error(exc: GatewayError) -> bytes:
    return (
        error_event({"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code})
        + DONE_EVENT
    )


__all__ = ["open_stream", "relay", "openai_stream_error"]
