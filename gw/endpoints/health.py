"""GET /health (liveness), /ready (readiness, 503 while starting or draining), /health/detailed."""


import os

import orjson
from blacksheep import Content, Request, Response

from ..auth import is_admin
from ..runtime import current

_JSON = b"application/json"


def _json(status: int, data: object) -> Response:
    return Response(status, None, Content(_JSON, orjson.dumps(data)))


async def health(request: Request) -> Response:
    return _json(200, {"status": "ok"})


def draining() -> bool:
    """`gw serve` marks a drain by creating the file named in GW_DRAIN_FILE."""
    path = os.environ.get("GW_DRAIN_FILE")
    return bool(path) and os.path.exists(path)  # type: ignore[arg-type]


async def ready(request: Request) -> Response:
    if current.runtime is None:
        return _json(503, {"status": "starting"})
    if draining():
        return _json(503, {"status": "draining"})
    return _json(200, {"status": "ready"})


async def detailed(request: Request) -> Response:
    runtime = current.runtime
    if runtime is None:
        return _json(503, {"status": "starting"})
    if not is_admin(runtime.tables.auth, request):
        return _json(
            401,
            {"error": {"message": "admin key required", "type": "authentication_error", "param": None, "code": None}},
        )
    providers = {
        name: {
            "type": str(p.type),
            "enabled": p.enabled,
            "up": p.enabled and name in runtime.adapters,
            # No breaker or error tracking yet (issue 5): nothing is ejected,
            # and what is not measured is null rather than a made-up zero.
            "circuit": "closed",
            "error_rate": None,
            "latency_ms": None,
            "last_error": p.disabled_reason,
        }
        for name, p in runtime.tables.providers.items()
    }
    models = {
        name: {
            "targets": [
                {"provider": b.target.provider, "model": b.target.model, "weight": b.target.weight, "circuit": "closed"}
                for b in route.bound
            ],
            "fallbacks": [f.model.name for f in route.fallbacks],
        }
        for name, route in runtime.routes.items()
    }
    return _json(200, {"status": "draining" if draining() else "ok", "providers": providers, "models": models})
