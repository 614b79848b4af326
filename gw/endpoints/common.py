"""What every /v1 endpoint does around its own work: context, auth, the end of a request."""

from __future__ import annotations

from blacksheep import Request

from .. import logs, metrics
from ..context import RequestContext, client_request_id
from ..relay import Receive


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


def receive_of(request: Request) -> Receive | None:
    """The ASGI receive callable, to notice a client leaving mid-stream."""
    scope = request.scope
    return scope.get("gw.receive") if scope else None
