"""GET /health (liveness), /ready (readiness, 503 while starting or draining), /health/detailed;
HEAD and GET / (agents' connectivity checks: 200, no key needed)."""

from __future__ import annotations

import os

import orjson
from blacksheep import Content, Request, Response

from ..auth import is_admin
from ..errors import Unauthorized
from ..wire import plain_json as _json
from ..worker import Worker


async def health(request: Request) -> Response:
    return _json(200, {"status": "ok"})


_ROOT = orjson.dumps({"status": "ok", "service": "gw"})


async def root(request: Request) -> Response:
    """200 to anyone; HEAD's answer has the headers only."""
    if request.method == "HEAD":
        return Response(200, [(b"content-type", b"application/json")], None)
    return Response(200, None, Content(b"application/json", _ROOT))


def draining() -> bool:
    """`gw serve` marks a drain by creating the file named in GW_DRAIN_FILE."""
    path = os.environ.get("GW_DRAIN_FILE")
    if not path:
        return False
    return os.path.exists(path)


async def ready(request: Request, worker: Worker) -> Response:
    if worker.runtime is None:
        return _json(503, {"status": "starting"})
    if draining():
        return _json(503, {"status": "draining"})
    return _json(200, {"status": "ready"})


async def detailed(request: Request, worker: Worker) -> Response:
    runtime = worker.runtime
    if runtime is None:
        return _json(503, {"status": "starting"})
    if not is_admin(runtime.tables.auth, request):
        raise Unauthorized("admin key required", code="admin_key_required")
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
    now = worker.clock()
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
        {
            "status": "draining" if draining() else "ok",
            "pid": os.getpid(),
            "providers": providers,
            "models": models,
            # gw's own rate limits: where their state is, and whether it answered last time
            "limits": {
                "backend": str(runtime.tables.limits.backend) if runtime.limits.backend is not None else None,
                "up": runtime.limits.up,
                "on_redis_error": runtime.tables.limits.on_redis_error,
                # keys with a budget_usd: their spend in the current period (from the store)
                "spend": await runtime.limits.spend(),
            },
            # the response cache: its store, whether it answered last time (memory: this worker's entries)
            "cache": runtime.cache.health() if runtime.cache is not None else {"backend": None},
        },
    )
