"""POST /admin/reload: compile the config again and swap it in, in every worker."""

from __future__ import annotations

from blacksheep import Request, Response

from ..auth import is_admin
from ..errors import BadRequest, ConfigError, Forbidden, Unauthorized, Unavailable
from ..wire import plain_json
from ..worker import Worker


async def reload(request: Request, worker: Worker) -> Response:
    """200 with what changed; 400 with every problem (the current config stays)."""
    runtime = worker.runtime
    if runtime is None:
        raise Unavailable("gw is starting")
    auth = runtime.tables.auth
    # Unlike /health/detailed, changing what gw serves is never open to anyone.
    if auth.admin_key_digest is None:
        raise Forbidden("admin endpoints are off: set auth.admin_key to use them", code="admin_disabled")
    if not is_admin(auth, request):
        raise Unauthorized("admin key required", code="admin_key_required")
    try:
        summary = worker.reload()
    except ConfigError as exc:
        raise BadRequest(
            "config invalid, the current one stays: " + "; ".join(exc.problems[:5]),
            code="config_invalid",
            extra={"problems": list(exc.problems)},
        ) from None
    return plain_json(200, {"status": "reloaded", **summary})
