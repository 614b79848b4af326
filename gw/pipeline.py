"""One way through gw for every routed request: auth, limits, cache, routing, the answer.

    async def chat_completions(request):
        return await pipeline.run(request, read_chat)    # read_chat: body -> Parsed

The endpoint's reader parses and validates the body into a ``Parsed``
(operation, model, stream flag, the request forms, the client's encoders);
nothing here knows a protocol or a provider type. Errors are raised, never
rendered here: ``GatewayApp``'s exception handler renders them in the
client's envelope, and ends the request (log line, metrics) once its answer
has gone out, streams included.

Once the model is resolved (404, 403) and the key's limits admit the request
(429), the response cache is looked up (``gw.cache``): a hit is the answer,
without routing; a miss hands on what stores the fresh answer (a whole one
once routing returns it, a stream when the relay ended it well). Then each of
``Pipeline.steps`` runs in order (none by default: a hook for tests and
extensions); a step may raise a ``GatewayError`` or answer the request itself
(the bytes of the answer in the client's protocol, the whole stream for a stream).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, cast

from blacksheep import Request, Response

from . import routing
from .auth import authenticate
from .call import Call, Encoders, Operation
from .config.tables import ApiKey
from .context import Exchange, Outcome
from .relay import KEEP_LIMIT, ClientWatch, LateWatches, Receive, Relay
from .runtime import Runtime
from .wire import json_response, parse_object, read_body, stream_response


class Parsed(NamedTuple):
    """What an endpoint read from a request body."""

    operation: Operation
    model: str
    stream: bool = False
    encoders: Encoders | None = None  # the client protocol's writers (None: embeddings)
    to_chat: Callable[[], dict[str, Any]] | None = None  # the OpenAI chat form, for converting backends
    include_usage: bool = False
    # Client headers a backend of the client's own protocol gets on pass-through (lower case).
    headers: tuple[str, ...] = ()
    estimate: Callable[[], bytes] | None = None  # gw's own answer where a backend cannot serve it


Reader = Callable[[dict[str, Any]], Parsed]

# A step before routing: None to go on, or the answer's bytes (in the client's protocol).
Step = Callable[[Call, Outcome], Awaitable[bytes | None]]


class Pipeline:
    """The request path of one worker: ``steps`` run before routing (empty by default)."""

    __slots__ = ("steps", "late")

    def __init__(self, steps: tuple[Step, ...] = ()) -> None:
        self.steps = steps
        # A whole answer's client is watched from the next tick (every 20 ms): most
        # answers from a fast backend come sooner and skip the watcher task.
        self.late = LateWatches(0.02)

    async def run(self, request: Request, exchange: Exchange, runtime: Runtime, read: Reader) -> Response:
        """Authenticate, read the body, admit, look up the cache, run the steps, route; answer or stream."""
        caller = enter(request, exchange, runtime)
        tables = runtime.tables
        body = parse_object(await read_body(request, tables.server.max_body_bytes))
        parsed = read(body)
        route = runtime.resolve(parsed.model, caller)
        if runtime.limits.backend is not None:
            await runtime.limits.admit(caller, body, exchange.outcome)  # 429 when over the key's limit
        # the model label is the configured name: a pattern's, not the free-form requested one
        info = exchange.info = exchange.info.known(
            exchange.info.key_name, route.model.name, parsed.stream, body if tables.logging.bodies else None
        )
        outcome = exchange.outcome
        save = None
        if runtime.cache is not None:
            hit, save = await runtime.cache.look_up(
                info.key_name,
                parsed.operation,
                parsed.model,
                parsed.stream,
                body,
                cache_control(request),
                outcome,
            )
            if hit is not None:  # no routing: no provider's limits, no usage, no cost
                if tables.logging.bodies:
                    outcome.response_body = hit[:KEEP_LIMIT] if parsed.stream else hit
                return _answered(hit, exchange)
        call = Call(
            info,
            parsed.operation,
            body,
            parsed.encoders,
            parsed.to_chat,
            parsed.include_usage,
            headers=client_headers(request, parsed.headers) if parsed.headers else (),
            estimate=parsed.estimate,
        )
        for step in self.steps:
            answer = await step(call, outcome)
            if answer is not None:
                return _answered(answer, exchange)
        receive = receive_of(request)
        watch = None
        if receive is not None:
            watch = exchange.watch = ClientWatch(receive, None if parsed.stream else self.late)
        if not parsed.stream:
            data = await routing.answer(route, call, outcome)
            if watch is not None:
                watch.stop()
            if tables.logging.bodies:
                outcome.response_body = data
            if save is not None:
                save(data)
            return json_response(data, info, outcome)
        first, rest = await routing.open_stream(route, call, outcome)
        relay = exchange.stream = Relay(
            first, rest, info.protocol, outcome, watch, tables.logging.bodies, parsed.model, save
        )
        return stream_response(info, outcome, relay.body)


def enter(request: Request, exchange: Exchange, runtime: Runtime) -> ApiKey | None:
    """The request starts on ``runtime`` (counted until it ends: a reload closes this
    runtime's clients only after) and its caller is known: 401 for a bad key."""
    runtime.active += 1
    exchange.runtime = runtime
    caller = authenticate(runtime.tables.auth, request)
    if caller is not None:  # known from here on, for the log line and metrics of a refusal too
        exchange.info = exchange.info.known(caller.name)
    return caller


async def run_stored(
    request: Request, exchange: Exchange, runtime: Runtime, method: str, path: str
) -> Response:
    """A stored response's route (``GET``/``DELETE /v1/responses/{id}``, ``.../cancel``,
    ``.../input_items``): no model to route by, so each native Responses provider the
    caller may use is asked in turn (``routing.stored``)."""
    caller = enter(request, exchange, runtime)
    info = exchange.info
    call = Call(info, Operation.RESPONSES, {})
    adapters = runtime.stored_responses(caller)
    status, data = await routing.stored(adapters, method, path, call, exchange.outcome)
    return json_response(data, info, exchange.outcome, status)


def _answered(answer: bytes, exchange: Exchange) -> Response:
    info = exchange.info
    if info.stream:

        async def body() -> Any:
            yield answer

        return stream_response(info, exchange.outcome, body)
    return json_response(answer, info, exchange.outcome)


def client_headers(request: Request, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The client's values of the headers ``names`` it sent (several of one name joined by commas)."""
    found = []
    for name in names:
        values = request.get_headers(name.encode())
        if values:
            found.append((name, ",".join(v.decode("latin-1") for v in values)))
    return tuple(found)


def cache_control(request: Request) -> bytes | None:
    """The request's ``Cache-Control`` (several headers joined by commas)."""
    values = request.get_headers(b"cache-control")
    if not values:
        return None
    return values[0] if len(values) == 1 else b",".join(values)


def receive_of(request: Request) -> Receive | None:
    """The ASGI receive callable, to notice the client leaving."""
    scope = cast(dict[str, Any] | None, request.scope)
    return cast(Receive | None, scope.get("gw.receive")) if scope else None


__all__ = ["Parsed", "Pipeline", "Reader", "Step", "receive_of", "run_stored"]
