"""GET /health (liveness), /ready (readiness, 503 while starting or draining), /health/detailed."""


import os
import time

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
    health = runtime.health
    providers = {}
    for name, p in runtime.tables.providers.items():
        seen = health.providers[name]
        providers[name] = {
            "type": str(p.type),
            "enabled": p.enabled,
            "up": seen.up,
            "circuit": str(seen.circuit),
            "failures": seen.failures,
            # This worker's view; null until it has tried the provider.
            "error_rate": None if seen.error_rate is None else round(seen.error_rate, 4),
            "latency_ms": None if seen.latency_ms is None else round(seen.latency_ms, 3),
            "last_error": seen.last_error if p.enabled else p.disabled_reason,
        }
    now = time.monotonic()
    models = {
        name: {
            "targets": [
                {
                    "provider": b.target.provider,
                    "model": b.target.model,
                    "weight": b.target.weight,
                    "circuit": str(b.breaker.state),
                    "failures": b.breaker.failures,
                    "retry_in_s": round(b.breaker.retry_in(now), 3),
                }
                for b in route.bound
            ],
            "fallbacks": [f.model.name for f in route.fallbacks],
        }
        for name, route in runtime.routes.items()
    }
    return _json(
        200,
        {"status": "draining" if draining() else "ok", "pid": os.getpid(), "providers": providers, "models": models},
    )
