"""POST /admin/reload: compile the config again and swap it in, in every worker."""

import orjson
from blacksheep import Content, Request, Response

from ..auth import is_admin
from ..errors import ConfigError
from ..runtime import current
from ..worker import WORKER

_JSON = b"application/json"


def _json(status: int, data: object) -> Response:
    return Response(status, None, Content(_JSON, orjson.dumps(data)))


def _error(status: int, message: str, type_: str, **extra: object) -> Response:
    return _json(status, {"error": {"message": message, "type": type_, "param": None, "code": None}, **extra})


async def reload(request: Request) -> Response:
    """200 with what changed; 400 with every problem (the current config stays)."""
    runtime = current.runtime
    if runtime is None:
        return _error(503, "gw is starting", "service_unavailable")
    auth = runtime.tables.auth
    # Unlike /health/detailed, changing what gw serves is never open to anyone.
    if auth.admin_key_digest is None:
        return _error(403, "admin endpoints are off: set auth.admin_key to use them", "permission_error")
    if not is_admin(auth, request):
        return _error(401, "admin key required", "authentication_error")
    try:
        summary = WORKER.reload()
    except ConfigError as exc:
        return _error(
            400,
            "config invalid, the current one stays: " + "; ".join(exc.problems[:5]),
            "invalid_request_error",
            problems=list(exc.problems),
        )
    return _json(200, {"status": "reloaded", **summary})
