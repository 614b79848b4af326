"""POST /v1/chat/completions: OpenAI Chat Completions, streaming and not."""


import asyncio
import time
from typing import Any

from blacksheep import Request, Response

from ..auth import authenticate
from ..errors import BadRequest, GatewayError
from ..relay import ClientWatch, open_stream, relay
from ..routing import Bound, attempt
from ..runtime import current
from ..wire import error_response, json_response, parse_object, read_body, require, stream_response
from .common import begin, finish, receive_of


def validate_chat(body: dict[str, Any]) -> tuple[str, bool]:
    """The model and whether to stream; 400 for what no backend could take."""
    model = require(body, "model", str, "a string")
    messages = require(body, "messages", list, "an array")
    if not messages:
        raise BadRequest("'messages' must not be empty", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"'messages[{i}]' must be an object with a string 'role'", param=f"messages[{i}]")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be a boolean", param="stream")
    return model, stream


async def chat_completions(request: Request) -> Response:
    ctx = begin(request, "chat")
    runtime = current.runtime
    assert runtime is not None
    streaming = False
    try:
        caller = authenticate(runtime.tables.auth, request)
        if caller is not None:
            ctx.key_name = caller.name
        body = parse_object(await read_body(request, runtime.tables.server.max_body_bytes))
        name, stream = validate_chat(body)
        route = runtime.resolve(name, caller)
        ctx.model = name  # only a configured name: it becomes a metric label
        if stream:
            ctx.stream = True
            receive = receive_of(request)
            watch = ClientWatch(receive) if receive is not None else None
            try:
                first, events = await open_stream(
                    runtime, route, ctx, lambda bound: bound.adapter.chat_stream(body, bound.target, ctx)
                )
            except BaseException as exc:
                if watch is not None:
                    watch.stop()
                    if isinstance(exc, asyncio.CancelledError) and watch.left:
                        watch.absorb(ctx)
                        return Response(499, None, None)
                raise
            streaming = True  # from here the relay finishes the request
            return stream_response(ctx, relay(first, events, ctx, watch, finish))

        async def call(bound: Bound) -> bytes:
            started = time.perf_counter()
            try:
                return await bound.adapter.chat(body, bound.target, ctx)
            finally:
                ctx.upstream_s += time.perf_counter() - started

        response = json_response(await attempt(route, runtime.retries, runtime.retry_on, ctx, call), ctx)
    except GatewayError as exc:
        response = error_response(exc, ctx)
    finally:
        if not streaming:
            finish(ctx)
    return response


__all__ = ["chat_completions", "validate_chat"]
