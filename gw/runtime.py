"""What a worker serves with: the compiled tables bound to live adapters.

Built once at start-up (and again on reload) from ``Tables``; handlers read
``runtime.current`` once per request, so a swap never changes a request midway.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from .config.tables import ApiKey, Tables
from .errors import Forbidden, ModelNotFound
from .providers import Adapter, build_adapter
from .routing import Bound, Route



class Runtime:
    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.adapters: dict[str, Adapter] = {}
        for name, provider in tables.providers.items():
            if not provider.enabled:
                continue
            self.adapters[name] = build_adapter(provider)

        routes = {
            name: Route(
                model,
                tuple(Bound(t, tables.providers[t.provider], self.adapters[t.provider]) for t in model.targets),
            )
            for name, model in tables.models.items()
        }
        for route in routes.values():
            route.fallbacks = tuple(routes[f] for f in route.model.fallbacks if f in routes)
        self.routes: Mapping[str, Route] = MappingProxyType(routes)
        self.model_names: tuple[str, ...] = tuple(routes)
        routing = tables.routing
        self.retries = routing.retries
        self.retry_on = routing.retry_on

    def resolve(self, name: str, caller: ApiKey | None) -> Route:
        """The route of a public model the caller may use (404 unknown, 403 not allowed)."""
        route = self.routes.get(name)
        if route is None:
            raise ModelNotFound(f"model '{name}' does not exist", param="model")
        if caller is not None and name not in caller.allowed_models:
            raise Forbidden(f"key '{caller.name}' may not use model '{name}'", param="model")
        return route

    def visible_models(self, caller: ApiKey | None) -> tuple[str, ...]:
        if caller is None:
            return self.model_names
        return tuple(n for n in self.model_names if n in caller.allowed_models)

    async def aclose(self) -> None:
        for adapter in self.adapters.values():
            await adapter.aclose()


class _Holder:
    """The worker's current runtime; replaced whole on reload."""

    runtime: Runtime | None = None


current = _Holder()
