"""Streams: the commit point, the error event, ``[DONE]``, client disconnects.

Before the first byte goes to the client a failure is raised (so routing can
retry or fall back); after it, the client gets one error event and ``[DONE]``
and the stream closes: never a made-up ``finish_reason``, never another backend.

    watch = ClientWatch(receive)
    start = lambda bound: bound.adapter.chat_stream(body, bound.target, ctx)
    first, events = await open_stream(runtime, route, ctx, start)   # may raise
    return wire.stream_response(ctx, relay(first, events, ctx, watch, done))
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Awaitable, Callable

from . import metrics
from ._fast.convert import DONE_EVENT, error_event
from .context import RequestContext
from .errors import GatewayError, UpstreamError, UpstreamUnavailable
from .routing import Bound, Route, attempt
from .runtime import Runtime

Receive = Callable[[], Awaitable[dict[str, Any]]]
_KEEP_LIMIT = 64 * 1024


async def open_stream(
    runtime: Runtime,
    route: Route,
    ctx: RequestContext,
    start: Callable[[Bound], AsyncIterator[bytes]],
) -> tuple[bytes, AsyncIterator[bytes]]:
    """The first bytes of a stream and the generator of the rest, with retries.

    ``start(bound)`` opens the stream on one target (an adapter's generator,
    maybe wrapped in a converter to the client's protocol).
    """

    async def first_of(bound: Bound) -> tuple[bytes, AsyncIterator[bytes]]:
        events = start(bound)
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


class ClientWatch:
    """Cancels the request's task as soon as the client goes away.

    Started once the request body has been read (from then on the ASGI
    ``receive`` only ever answers ``http.disconnect``), before gw waits on the
    upstream, so a client leaving before the first byte is noticed too.
    """

    __slots__ = ("left", "_task", "_watcher")

    def __init__(self, receive: Receive) -> None:
        self.left = False
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._watcher = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                self.left = True
                self._task.cancel()
                return

    def absorb(self, ctx: RequestContext) -> None:
        """Turn our own cancellation (``left`` is true) into a quiet end:
        nobody is there to read an error, and the server should not log one."""
        self._task.uncancel()
        ctx.error = "client disconnected"
        ctx.status = 499

    def stop(self) -> None:
        self._watcher.cancel()


def relay(
    first: bytes,
    events: AsyncIterator[bytes],
    ctx: RequestContext,
    watch: ClientWatch | None,
    done: Callable[[RequestContext], None],
    error_body: Callable[[GatewayError], bytes] | None = None,
    keep: bool = False,
) -> Callable[[], AsyncIterator[bytes]]:
    """The body generator of a committed stream (BlackSheep wants the function).

    ``keep`` (``logging.bodies``) keeps what was sent, up to 64 KiB, for the log line.
    """

    async def body() -> AsyncIterator[bytes]:
        kept = bytearray(first) if keep else None
        try:
            yield first
            async for chunk in events:
                if kept is not None and len(kept) < _KEEP_LIMIT:
                    kept += chunk
                yield chunk
        except GatewayError as exc:
            ctx.error = exc.message
            if isinstance(exc, UpstreamError):
                metrics.upstream_failed(exc.provider, exc.reason)
                ctx.status = exc.status  # for logs and metrics; the client already has 200
                if ctx.bound is not None and exc.retryable:
                    ctx.bound.breaker.failed(exc.message, exc.retry_after)
            yield error_body(exc) if error_body else openai_stream_error(exc)
        except asyncio.CancelledError:
            if watch is None or not watch.left:
                raise
            watch.absorb(ctx)
        finally:
            if watch is not None:
                watch.stop()
            await events.aclose()
            if kept is not None:
                ctx.response_body = bytes(kept[:_KEEP_LIMIT])
            done(ctx)

    return body


def openai_stream_error(exc: GatewayError) -> bytes:
    return (
        error_event({"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code})
        + DONE_EVENT
    )


__all__ = ["open_stream", "relay", "openai_stream_error"]
