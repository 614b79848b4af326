"""The BlackSheep app: routes, the request's beginning and end, error rendering, start-up, shutdown.

Served by Granian: ``gw serve`` (recommended: drain, several workers' metrics)
or ``granian --interface asgi gw.app:app`` with the config in ``GW_CONFIG``.
The config is compiled when this module is imported, in each worker; the
upstream clients are built when the worker's event loop starts.

    app = create_app(tables, "config.yaml", clock=time.monotonic, flush_interval=0.25)
    app.worker.runtime          # what requests are served with (None until started)
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from blacksheep import Application, Content, Request, Response
from blacksheep.scribe import send_asgi_response
from blacksheep.server.routing import Router

from . import (
    _fast,  # noqa: F401  (fails early, with how to build, if not compiled)
    logs,
    metrics,
)
from .config import load_tables
from .config.tables import Tables
from .context import Endpoint, Exchange, Protocol, RequestInfo, client_request_id
from .endpoints import admin, health, models
from .endpoints.chat import read_chat
from .endpoints.completions import read_completions
from .endpoints.embeddings import read_embeddings
from .endpoints.messages import read_count_tokens, read_messages
from .endpoints.responses import read_compact, read_input_tokens, read_responses, stored_path
from .errors import GatewayError, MethodNotAllowed, NotFound, Unavailable
from .pipeline import Pipeline, Reader, Step, run_stored
from .routing import Clock
from .runtime import Runtime
from .wire import error_response
from .worker import Worker

log = logging.getLogger("gw.app")

Handler = Callable[[Request], Awaitable[Response]]


class _Path:
    """What gw knows of a path before reading anything: its method, labels and envelope."""

    __slots__ = ("method", "endpoint", "protocol")

    def __init__(self, method: str, endpoint: Endpoint, protocol: Protocol = Protocol.OPENAI) -> None:
        self.method = method
        self.endpoint = endpoint
        self.protocol = protocol


_PATHS: dict[str, _Path] = {
    "/v1/chat/completions": _Path("POST", Endpoint.CHAT),
    "/v1/completions": _Path("POST", Endpoint.COMPLETIONS),
    "/v1/embeddings": _Path("POST", Endpoint.EMBEDDINGS),
    "/v1/messages": _Path("POST", Endpoint.MESSAGES, Protocol.ANTHROPIC),
    "/v1/messages/count_tokens": _Path("POST", Endpoint.COUNT_TOKENS, Protocol.ANTHROPIC),
    "/v1/responses": _Path("POST", Endpoint.RESPONSES, Protocol.RESPONSES),
    "/v1/responses/compact": _Path("POST", Endpoint.RESPONSES, Protocol.RESPONSES),
    "/v1/responses/input_tokens": _Path("POST", Endpoint.RESPONSES, Protocol.RESPONSES),
    "/v1/models": _Path("GET", Endpoint.MODELS),
    "/admin/reload": _Path("POST", Endpoint.ADMIN),
    "/health/detailed": _Path("GET", Endpoint.ADMIN),
    "/health": _Path("GET", Endpoint.OTHER),
    "/ready": _Path("GET", Endpoint.OTHER),
}
_UNKNOWN = _Path("", Endpoint.OTHER)
_ROOT = _Path("GET, HEAD", Endpoint.OTHER)  # agents' connectivity checks
_MODEL = _Path("GET", Endpoint.MODELS)  # /v1/models/{id}
_MESSAGES_OTHER = _Path("", Endpoint.OTHER, Protocol.ANTHROPIC)  # /v1/messages/...: Anthropic's 404
_STORED = _Path("", Endpoint.RESPONSES, Protocol.RESPONSES)  # /v1/responses/{id}...
# Polled all the time by orchestrators, monitors, scrapers and agents: neither logged nor counted.
_PROBES = frozenset({"/health", "/ready", "/health/detailed", "/"})


def _path_of(path: str) -> _Path:
    """What gw knows of ``path``: its own entry, else its family's (by prefix)."""
    known = _PATHS.get(path)
    if known is not None:
        return known
    if path == "/":
        return _ROOT
    if path.startswith("/v1/models/"):
        return _MODEL
    if path.startswith("/v1/messages/"):
        return _MESSAGES_OTHER
    if path.startswith("/v1/responses/"):
        return _STORED
    return _UNKNOWN


class GatewayApp(Application):
    """BlackSheep's application with gw's request bookkeeping around each exchange."""

    worker: Worker
    probes: frozenset[str]

    def instantiate_request(self, scope: Any, receive: Any) -> Request:
        # The pipeline watches `receive` for the client leaving (relay.ClientWatch).
        scope["gw.receive"] = receive
        request: Request = super().instantiate_request(scope, receive)
        return request

    async def _handle_http(self, scope: Any, receive: Any, send: Any) -> None:
        """BlackSheep's own, with the request's beginning and end around it.

        The end runs once the answer has gone out, streams included, and also
        when the client left before a stream's body started (the stream is
        closed, the request counted, the runtime released).
        """
        if not self.started:
            await self.start()  # type: ignore[no-untyped-call]  # BlackSheep's start() has no annotations
        request = self.instantiate_request(scope, receive)
        exchange = self._begin(request)
        scope["gw"] = exchange
        try:
            response = await self.handle(request)
            exchange.outcome.status = response.status
            await send_asgi_response(response, send)
        except asyncio.CancelledError:
            watch = exchange.watch
            if watch is None or not watch.left:
                raise
            watch.absorb(exchange.outcome)  # the client left: a quiet end
        finally:
            await self._end(exchange)
        request.scope = None  # type: ignore[assignment]  # as BlackSheep does: drop the cycle
        request.dispose()

    def _begin(self, request: Request) -> Exchange:
        path = request.path
        known = _path_of(path)
        protocol = known.protocol
        if known.endpoint is Endpoint.MODELS and request.get_first_header(b"anthropic-version"):
            protocol = Protocol.ANTHROPIC  # an Anthropic client: its list format, its errors
        info = RequestInfo(
            client_request_id(request.get_first_header(b"x-request-id")),
            known.endpoint,
            protocol,
            request.method,
            path[:200],
            time.perf_counter(),
        )
        logged = path not in self.probes
        if logged:
            self.worker.batch.started()
        return Exchange(info, logged)

    async def _end(self, exchange: Exchange) -> None:
        """Log and count a request once its answer has fully gone out."""
        outcome = exchange.outcome
        try:
            if exchange.watch is not None:
                exchange.watch.stop()
            if exchange.stream is not None:
                await exchange.stream.aclose()
        finally:
            if not outcome.status:  # ended by an exception nobody rendered
                outcome.status = 500
            if exchange.logged:
                duration = time.perf_counter() - exchange.info.received
                self.worker.batch.record(exchange.info, outcome, duration)
                self.worker.output.request(exchange.info, outcome, duration)
            runtime = exchange.runtime
            if runtime is not None:
                if outcome.held is not None:
                    try:
                        runtime.limits.settle(outcome)
                    except Exception:  # the request is over: a failed correction must not undo it
                        log.exception("settling the request's limits failed")
                runtime.leave()


def exchange_of(request: Request) -> Exchange:
    scope = cast(dict[str, Any], request.scope)  # BlackSheep types it as ASGI's fixed keys
    return cast(Exchange, scope["gw"])


def create_app(
    tables: Tables,
    config_path: str = "config.yaml",
    *,
    clock: Clock = time.monotonic,
    flush_interval: float = 0.25,
    steps: tuple[Step, ...] = (),
    worker: Worker | None = None,
) -> GatewayApp:
    """The app for ``tables``. ``clock`` is what breakers and routing read (monotonic
    seconds), ``flush_interval`` how often metrics are written, ``steps`` run before
    routing (``gw.pipeline``). ``worker`` (else one on ``config_path`` and ``clock``),
    made before ``tables`` were loaded, catches a reload announced in between."""
    if worker is None:
        worker = Worker(config_path, clock)
    output = logs.setup(tables.logging.level, tables.logging.format, worker.output)
    app = GatewayApp(show_error_details=False, router=Router())  # its own: several apps in one process
    app.worker = worker
    pipeline = Pipeline(steps)
    metrics_path = tables.metrics.path if tables.metrics.enabled else None
    app.probes = _PROBES | ({metrics_path} if metrics_path else set())

    def runtime_of() -> Runtime:
        runtime = worker.runtime
        if runtime is None:
            raise Unavailable("gw is starting")
        return runtime

    def routed(read: Reader) -> Handler:
        async def handler(request: Request) -> Response:
            return await pipeline.run(request, exchange_of(request), runtime_of(), read)

        return handler

    async def list_models(request: Request) -> Response:
        return await models.list_models(request, exchange_of(request), runtime_of())

    async def get_model(request: Request) -> Response:
        name = request.route_values.get("tail") or ""  # decoded: a model name may hold "/"
        return await models.get_model(request, exchange_of(request), runtime_of(), name)

    async def health_check(request: Request) -> Response:
        return await health.health(request)

    async def ready(request: Request) -> Response:
        return await health.ready(request, worker)

    async def detailed(request: Request) -> Response:
        return await health.detailed(request, worker)

    async def reload(request: Request) -> Response:
        return await admin.reload(request, worker)

    handlers: dict[str, Handler] = {
        "/v1/chat/completions": routed(read_chat),
        "/v1/completions": routed(read_completions),
        "/v1/embeddings": routed(read_embeddings),
        "/v1/messages": routed(read_messages),
        "/v1/messages/count_tokens": routed(read_count_tokens),
        "/v1/responses": routed(read_responses),
        "/v1/responses/compact": routed(read_compact),
        "/v1/responses/input_tokens": routed(read_input_tokens),
        "/v1/models": list_models,
        "/health": health_check,
        "/health/detailed": detailed,
        "/ready": ready,
        "/admin/reload": reload,
    }
    for path, handler in handlers.items():
        app.router.add(_PATHS[path].method, path, handler)
    app.router.add("GET", "/v1/models/*", get_model)  # after /v1/models, which it would match too
    app.router.add("GET", "/", health.root)
    app.router.add("HEAD", "/", health.root)

    def stored(method: str, action: str = "") -> Handler:
        async def handler(request: Request) -> Response:
            path = stored_path(request.route_values["response_id"] or "", action, request.url.query or b"")
            return await run_stored(request, exchange_of(request), runtime_of(), method, path)

        return handler

    app.router.add_get("/v1/responses/:response_id", stored("GET"))
    app.router.add_delete("/v1/responses/:response_id", stored("DELETE"))
    app.router.add_post("/v1/responses/:response_id/cancel", stored("POST", "cancel"))
    app.router.add_get("/v1/responses/:response_id/input_items", stored("GET", "input_items"))

    async def fallback(request: Request) -> Response:
        path = request.path
        if metrics_path is not None and path == metrics_path and request.method == "GET":
            data, content_type = metrics.exposition(worker.batch)
            return Response(200, None, Content(content_type.encode(), data))
        known = _path_of(path)
        if known.method:
            raise MethodNotAllowed(
                f"{request.method} is not allowed on {path}: use {known.method}", allow=known.method
            )
        if path.startswith("/v1/"):
            raise NotFound(f"no route for {request.method} {path[:200]}")
        if "/v1" + path in _PATHS:
            raise NotFound(f"no route for {path[:200]}: did you mean /v1{path}?")
        raise NotFound(f"no route for {path[:200]}: gw's API is under /v1 (e.g. POST /v1/chat/completions)")

    app.router.fallback = fallback

    # The one place errors become responses: the client's envelope, with x-request-id.
    @app.exception_handler(GatewayError)
    async def on_gateway_error(app: Any, request: Request, exc: GatewayError) -> Response:
        exchange = exchange_of(request)
        return error_response(exc, exchange.info, exchange.outcome)

    @app.exception_handler(Exception)
    async def on_unexpected(app: Any, request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        exchange = exchange_of(request)
        return error_response(GatewayError("internal error"), exchange.info, exchange.outcome)

    if tables.server.cors_allow_origins is not None:
        app.use_cors(
            allow_origins=list(tables.server.cors_allow_origins),
            allow_methods="*",
            allow_headers="*",
            expose_headers=[
                "x-request-id",
                "x-gw-provider",
                "x-gw-overhead-ms",
                "x-gw-token-count",
                "x-gw-cost-usd",
                "x-gw-cache",
                "retry-after",
            ],
        )

    async def start(application: Application) -> None:
        runtime = worker.start(tables)
        worker.batch.start(flush_interval)
        # Everything built so far lives as long as the worker: keep the cyclic
        # GC from walking it again and again, and collect young objects less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        logs.event("worker started", pid=os.getpid(), models=len(runtime.routes), config=tables.source)

    async def stop(application: Application) -> None:
        await worker.stop()
        worker.batch.stop()
        logs.event("worker stopped", pid=os.getpid())
        output.flush()
        metrics.worker_exited(os.getpid())

    app.on_start += start
    app.on_stop += stop
    return app


_CONFIG = os.environ.get("GW_CONFIG", "config.yaml")
_WORKER = Worker(_CONFIG)  # first: it notes the reload signal before the config is read
app = create_app(load_tables(_CONFIG), _CONFIG, worker=_WORKER)
