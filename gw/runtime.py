"""What a worker serves with: the compiled tables bound to live adapters and breakers.

Built once at start-up and again on each reload from ``Tables``; a request
reads ``worker.runtime`` once, so a swap never changes a request midway::

    runtime = Runtime(new_tables, previous=worker.runtime)   # keeps unchanged providers
    worker.runtime, old = runtime, worker.runtime
    old.retire(runtime)   # its own upstream clients close once its last request ends
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase, translate
from types import MappingProxyType

from . import logs, metrics
from .breaker import Health
from .cache import ResponseCache
from .config.tables import REQUESTED, ApiKey, Tables
from .context import Closer
from .errors import Forbidden, ModelNotFound
from .limits import Backend, Limits
from .providers import Adapter, build_adapter
from .providers.base import StoresResponses
from .routing import Bound, Clock, Policy, Route


class Runtime:
    def __init__(
        self,
        tables: Tables,
        previous: Runtime | None = None,
        clock: Clock = time.monotonic,
        limits: Backend | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self.tables = tables
        self.limits = Limits(tables, limits)
        self.cache = cache  # the worker's, kept across reloads that leave `cache:` alone
        # Providers whose record is unchanged keep their adapter (connection
        # pools) and breakers; the rest are built anew.
        kept = set()
        if previous is not None:
            kept = {
                name
                for name, provider in tables.providers.items()
                if provider.enabled and previous.tables.providers.get(name) == provider
            }
        self.kept_providers = frozenset(kept)
        self.health: Health = previous.health.carried_over(kept) if previous is not None else Health()
        self.adapters: dict[str, Adapter] = {}
        for name, provider in tables.providers.items():
            self.health.provider(name, provider.enabled)
            if not provider.enabled:
                continue
            self.adapters[name] = (
                previous.adapters[name] if previous is not None and name in kept else build_adapter(provider)
            )

        routing = tables.routing
        policy = Policy(routing.retries, routing.retry_on, clock, self.limits if limits is not None else None)
        routes = {
            name: Route(
                model,
                tuple(
                    Bound(
                        t,
                        tables.providers[t.provider],
                        self.adapters[t.provider],
                        self.health.breaker(
                            t.provider, t.model, routing.breaker_failures, routing.breaker_cooldown_s
                        ),
                        model.price,
                        REQUESTED in t.model,
                    )
                    for t in model.targets
                ),
                policy=policy,
            )
            for name, model in tables.models.items()
        }
        for route in routes.values():
            route.fallbacks = tuple(routes[f] for f in route.model.fallbacks if f in routes)
        for health in self.health.providers.values():
            health.refresh()
        self.routes: Mapping[str, Route] = MappingProxyType(routes)
        # /v1/models lists names a client can send: the exact ones
        self.model_names: tuple[str, ...] = tuple(n for n in routes if n not in tables.patterns)
        self._pattern_names = frozenset(tables.patterns)
        # (matches, route) of each pattern, the most specific first
        self.patterns: tuple[tuple[Callable[[str], object], Route], ...] = tuple(
            (re.compile(translate(p)).match, routes[p]) for p in tables.patterns
        )
        # Requests started on this runtime and not finished yet.
        self.active = 0
        self._retired: list[Closer] | None = None

    def resolve(self, name: str, caller: ApiKey | None) -> Route:
        """The route of a requested model name the caller may use (404 unknown or off,
        403 not allowed): its model's, else the first pattern's that matches it.

        A key's globs apply to the requested name, pattern or not.
        """
        route = self.routes.get(name)
        if route is not None and name not in self._pattern_names:
            if caller is not None and name not in caller.allowed_models:
                raise Forbidden(f"key '{caller.name}' may not use model '{name}'", param="model")
            return route
        for matches, pattern_route in self.patterns:
            if matches(name):
                if caller is not None and not any(fnmatchcase(name, g) for g in caller.model_globs):
                    raise Forbidden(f"key '{caller.name}' may not use model '{name}'", param="model")
                return pattern_route
        why = self.tables.dropped_models.get(name)
        if why is None:  # a pattern whose targets are all off?
            why = next((w for p, w in self.tables.dropped_models.items() if fnmatchcase(name, p)), None)
        # only a caller whose key covers the model learns that it exists and why it is off
        if why is not None and (caller is None or any(fnmatchcase(name, g) for g in caller.model_globs)):
            raise ModelNotFound(f"model '{name}' is configured but {why}", param="model")
        raise ModelNotFound(f"model '{name}' does not exist", param="model")

    def stored_responses(self, caller: ApiKey | None) -> list[StoresResponses]:
        """The adapters that may hold a stored response of the caller's: native Responses
        providers that serve a model (or pattern) the caller's key covers, in config order."""
        names: set[str] = set()
        for name, route in self.routes.items():
            if caller is None or any(fnmatchcase(name, g) for g in caller.model_globs):
                names.update(b.provider.name for b in route.bound if b.provider.responses_native)
        return [a for n, a in self.adapters.items() if n in names and isinstance(a, StoresResponses)]

    def visible_models(self, caller: ApiKey | None) -> tuple[str, ...]:
        if caller is None:
            return self.model_names
        return tuple(n for n in self.model_names if n in caller.allowed_models)

    def leave(self) -> None:
        """A request that started on this runtime ended."""
        self.active -= 1
        if self._retired is not None and self.active == 0:
            self._close_retired()

    def retire(self, successor: Runtime) -> None:
        """Replaced by ``successor``: close the adapters, cache and limits store it does not keep,
        once idle."""
        kept = successor.kept_providers
        retired: list[Closer] = [a for name, a in self.adapters.items() if name not in kept]
        if self.cache is not None and self.cache is not successor.cache:
            retired.append(self.cache)
        if self.limits.backend is not None and self.limits.backend is not successor.limits.backend:
            retired.append(self.limits.backend)  # its pool, once its settlements are sent
        self._retired = retired
        for name in self.tables.providers:
            if name not in successor.tables.providers:
                metrics.forget_provider(name)
        if self.active == 0:
            self._close_retired()

    def _close_retired(self) -> None:
        adapters, self._retired = self._retired or [], []
        if adapters:
            task = asyncio.get_running_loop().create_task(_close(adapters))
            _CLOSING.add(task)
            task.add_done_callback(_CLOSING.discard)

    async def aclose(self) -> None:
        for adapter in self.adapters.values():
            await adapter.aclose()


_CLOSING: set[asyncio.Task[None]] = set()


async def _close(closers: list[Closer]) -> None:
    for closer in closers:
        try:
            await closer.aclose()
        except Exception:  # a pool that fails to close must not stop the others
            logs.event("closing an upstream client, a cache or a limits store failed", level=logging.WARNING)
