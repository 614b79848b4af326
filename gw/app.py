"""The BlackSheep app: routes, start-up, shutdown.

Served by Granian: ``gw serve`` (recommended: drain, several workers' metrics)
or ``granian --interface asgi gw.app:app`` with the config in ``GW_CONFIG``.
The config is compiled when this module is imported, in each worker; the
upstream clients are built when the worker's event loop starts.
"""


import gc
import logging
import os
from typing import Any

from blacksheep import Application, Content, Request, Response

from . import _fast  # noqa: F401  (fails early, with how to build, if not compiled)
from . import logs, metrics
from .config import load_tables
from .config.tables import Tables
from .context import RequestContext, client_request_id
from .errors import GatewayError, MethodNotAllowed, NotFound
from .endpoints import admin, chat, completions, embeddings, health, messages, models
from .wire import error_response
from .worker import WORKER

log = logging.getLogger("gw.app")


class GatewayApp(Application):
    def instantiate_request(self, scope: Any, receive: Any) -> Request:
        # Streams watch `receive` for the client leaving (relay._watch_disconnect).
        scope["gw.receive"] = receive
        return super().instantiate_request(scope, receive)  # type: ignore[no-any-return]


_ROUTES: dict[str, str] = {
    "/v1/chat/completions": "POST",
    "/v1/completions": "POST",
    "/v1/embeddings": "POST",
    "/v1/messages": "POST",
    "/v1/models": "GET",
    "/health": "GET",
    "/health/detailed": "GET",
    "/ready": "GET",
    "/admin/reload": "POST",
}


def _no_route(request: Request) -> Response:
    """404 (or 405 for a known path) in the OpenAI envelope; /v1 errors carry a request id."""
    path = request.path
    allowed = _ROUTES.get(path)
    if allowed is not None:
        exc: GatewayError = MethodNotAllowed(f"{request.method} is not allowed on {path}: use {allowed}")
    else:
        exc = NotFound(f"no route for {path[:200]}")
    ctx = RequestContext(client_request_id(request.get_first_header(b"x-request-id")), "other")
    response = error_response(exc, ctx)
    if allowed is not None:
        response.add_header(b"allow", allowed.encode())
    return response


def create_app(tables: Tables, config_path: str = "config.yaml") -> GatewayApp:
    logs.setup(tables.logging.level, tables.logging.format)
    app = GatewayApp(show_error_details=False)
    metrics_path = tables.metrics.path if tables.metrics.enabled else None

    handlers = {
        "/v1/chat/completions": chat.chat_completions,
        "/v1/completions": completions.completions,
        "/v1/embeddings": embeddings.embeddings,
        "/v1/messages": messages.messages,
        "/v1/models": models.list_models,
        "/health": health.health,
        "/health/detailed": health.detailed,
        "/ready": health.ready,
        "/admin/reload": admin.reload,
    }
    for path, handler in handlers.items():
        app.router.add(_ROUTES[path], path, handler)

    async def fallback(request: Request) -> Response:
        if metrics_path is not None and request.path == metrics_path and request.method == "GET":
            data, content_type = metrics.exposition()
            return Response(200, None, Content(content_type.encode(), data))
        return _no_route(request)

    app.router.fallback = fallback

    @app.exception_handler(Exception)
    async def on_unexpected(app: Any, request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        body = b'{"error":{"message":"internal error","type":"api_error","param":null,"code":null}}'
        return Response(500, None, Content(b"application/json", body))

    if tables.server.cors_allow_origins is not None:
        app.use_cors(
            allow_origins=list(tables.server.cors_allow_origins),
            allow_methods="*",
            allow_headers="*",
            expose_headers=["x-request-id", "x-gw-provider", "x-gw-overhead-ms", "retry-after"],
        )

    async def start(application: Application) -> None:
        runtime = WORKER.start(tables, config_path)
        metrics.BATCH.start()
        # Everything built so far lives as long as the worker: keep the cyclic
        # GC from walking it again and again, and collect young objects less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        logs.event("worker started", pid=os.getpid(), models=len(runtime.routes), config=tables.source)

    async def stop(application: Application) -> None:
        await WORKER.stop()
        metrics.BATCH.stop()
        logs.event("worker stopped", pid=os.getpid())
        logs.OUTPUT.flush()
        metrics.worker_exited(os.getpid())

    app.on_start += start
    app.on_stop += stop
    return app


_CONFIG = os.environ.get("GW_CONFIG", "config.yaml")
app = create_app(load_tables(_CONFIG), _CONFIG)
