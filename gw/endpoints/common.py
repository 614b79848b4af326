"""What every /v1 endpoint does around its own work: context, auth, routing, the end of a request.

An endpoint says what a request means (``Call``) and ``proxy`` does the rest::

    async def chat_completions(request):
        return await proxy(request, "chat", plan_chat)
"""

import asyncio
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable

from blacksheep import Request, Response

from .. import logs, metrics
from .._fast.rules import InvalidInput
from ..auth import authenticate
from ..context import RequestContext, client_request_id
from ..errors import BadRequest, GatewayError
from ..relay import ClientWatch, Receive, open_stream, relay
from ..routing import Bound, attempt
from ..runtime import current
from ..wire import error_response, json_response, parse_object, read_body, stream_response


def begin(request: Request, endpoint: str) -> RequestContext:
    metrics.request_started()
    return RequestContext(client_request_id(request.get_first_header(b"x-request-id")), endpoint)


def finish(ctx: RequestContext) -> None:
    """Log and count a request once its answer has fully gone out."""
    duration = ctx.elapsed()
    if not ctx.status:  # an unexpected exception is on its way to the 500 handler
        ctx.status = 500
    metrics.record(ctx, duration)
    logs.request_line(ctx, duration)
    if ctx.runtime is not None:
        ctx.runtime.leave()


def receive_of(request: Request) -> Receive | None:
    """The ASGI receive callable, to notice a client leaving mid-stream."""
    scope = request.scope
    return scope.get("gw.receive") if scope else None


@dataclass(slots=True)
class Call:
    """What one request asks of a target, built by the endpoint from the parsed body.

    ``whole(bound, ctx)`` answers the request in one piece (the response bytes);
    ``start(bound, ctx)`` opens a stream of SSE bytes in the client's protocol.
    ``stream_error`` renders a failure after the stream started (default: an
    OpenAI error event and ``[DONE]``).
    """

    model: str
    stream: bool
    whole: Callable[[Bound, RequestContext], Awaitable[bytes]]
    start: Callable[[Bound, RequestContext], AsyncIterator[bytes]]
    stream_error: Callable[[GatewayError], bytes] | None = None


def stream_flag(body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be a boolean", param="stream")
    return stream


async def proxy(
    request: Request,
    endpoint: str,
    plan: Callable[[dict[str, Any]], Call],
    anthropic: bool = False,
) -> Response:
    """Authenticate, read and plan the body, route it with retries, answer or stream.

    Errors come in the OpenAI envelope, or Anthropic's when ``anthropic``.
    """
    ctx = begin(request, endpoint)
    runtime = current.runtime
    assert runtime is not None
    runtime.active += 1  # until finish(): a reload closes this runtime's clients only after
    ctx.runtime = runtime
    bodies = runtime.tables.logging.bodies
    streaming = False
    try:
        caller = authenticate(runtime.tables.auth, request)
        if caller is not None:
            ctx.key_name = caller.name
        body = parse_object(await read_body(request, runtime.tables.server.max_body_bytes))
        if bodies:
            ctx.request_body = body
        try:
            call = plan(body)
        except InvalidInput as exc:
            raise BadRequest(exc.message, param=exc.param) from None
        route = runtime.resolve(call.model, caller)
        ctx.model = call.model  # only a configured name: it becomes a metric label
        if call.stream:
            ctx.stream = True
            receive = receive_of(request)
            watch = ClientWatch(receive) if receive is not None else None
            try:
                first, events = await open_stream(runtime, route, ctx, lambda bound: call.start(bound, ctx))
            except BaseException as exc:
                if watch is not None:
                    watch.stop()
                    if isinstance(exc, asyncio.CancelledError) and watch.left:
                        watch.absorb(ctx)
                        return Response(499, None, None)
                if isinstance(exc, InvalidInput):
                    raise BadRequest(exc.message, param=exc.param) from None
                raise
            streaming = True  # from here the relay finishes the request
            return stream_response(ctx, relay(first, events, ctx, watch, finish, call.stream_error, bodies))

        async def whole(bound: Bound) -> bytes:
            started = time.perf_counter()
            try:
                return await call.whole(bound, ctx)
            finally:
                ctx.upstream_s += time.perf_counter() - started

        try:
            data = await attempt(route, runtime.retries, runtime.retry_on, ctx, whole)
        except InvalidInput as exc:
            raise BadRequest(exc.message, param=exc.param) from None
        if bodies:
            ctx.response_body = data
        response = json_response(data, ctx)
    except GatewayError as exc:
        response = error_response(exc, ctx, anthropic)
    finally:
        if not streaming:
            finish(ctx)
    return response


__all__ = ["Call", "begin", "finish", "proxy", "receive_of", "stream_flag"]
