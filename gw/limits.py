"""gw's own rate limits: requests and tokens per minute of each key and each provider.

    limits = Limits(tables, backend)              # per runtime; the backend outlives reloads
    held = await limits.admit(caller, call)       # before routing: RateLimited (429) when over
    wait = await limits.target(provider, held)    # per attempt: > 0 skips that target
    await limits.settle(held, outcome)            # once the answer ended: tokens corrected

The algorithm is GCRA, a token bucket whose capacity is the minute's limit and
which refills continuously: a key with ``rpm: 60`` may send 60 requests at
once, then one a second; never a burst above the minute's total. Requests are
counted when admitted; tokens are reserved from an estimate (the request's
size / 4 + its max tokens) and corrected from the usage the backend reported
when the answer ends, streams included.

Backends (``limits.backend``): ``memory``, a table in a file every worker of
one ``gw serve`` maps (``gw._fast.counters``: one instance, all its workers
together), or ``redis``, one Lua script a decision (every replica together).
When Redis cannot be reached, ``limits.on_redis_error`` decides: ``open``
(default) admits and says so once per outage (log, ``gw_limits_backend_up``,
``/health/detailed``), ``closed`` answers 503; either way it recovers by itself.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from . import logs, metrics
from .config.tables import ApiKey, Provider, RateLimit, Tables
from .errors import LimitsUnavailable, RateLimited, Unavailable

if TYPE_CHECKING:
    from .context import Outcome

MINUTE = 60.0
# (backend key, limit per period, period in seconds, cost)
Entry = tuple[str, float, float, float]


class Backend(Protocol):
    async def take(self, entries: Sequence[Entry]) -> tuple[float, int]:
        """Admit all ``entries`` or none: (0.0, -1) when admitted (and recorded), else
        (the seconds until they would be, the index of the entry that waits longest).
        Raises ``LimitsUnavailable``."""
        ...

    async def adjust(self, key: str, limit: float, period: float, delta: float) -> None:
        """Charge (or refund, negative) ``delta`` after the fact."""
        ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class Held:
    """What one request was admitted with, to settle when it ends."""

    key: str | None = None  # the key's name when its tokens are limited
    key_limit: RateLimit | None = None
    reserved: float = 0.0  # tokens reserved
    # provider -> (tokens reserved there, its tpm)
    providers: dict[str, tuple[float, float]] = field(default_factory=dict)


def reserve_of(body: dict[str, Any]) -> float:
    """The tokens a request may use, before it runs: its size / 4, plus its max tokens."""
    limit = body.get("max_tokens") or body.get("max_completion_tokens") or body.get("max_output_tokens")
    extra = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else 0
    return len(orjson.dumps(body)) / 4 + extra


def _entries(prefix: str, limit: RateLimit | None, tokens: float) -> list[Entry]:
    out: list[Entry] = []
    if limit is None:
        return out
    if limit.rpm:
        out.append((f"{prefix}:rpm", float(limit.rpm), MINUTE, 1.0))
    if limit.tpm:
        out.append((f"{prefix}:tpm", float(limit.tpm), MINUTE, min(tokens, float(limit.tpm))))
    return out


class Limits:
    """The tables' limits on a backend (``None``: no limit configured anywhere)."""

    __slots__ = ("backend", "closed", "_outage", "_any_provider")

    def __init__(self, tables: Tables, backend: Backend | None) -> None:
        self.backend = backend
        self.closed = tables.limits.on_redis_error == "closed"
        self._outage = False
        if backend is not None:
            metrics.limits_up(True)
        self._any_provider = any(p.rate_limit for p in tables.providers.values())

    @property
    def up(self) -> bool:
        """Whether the shared state answered the last time it was asked."""
        return not self._outage

    async def admit(self, caller: ApiKey | None, body: dict[str, Any], outcome: Outcome) -> Held:
        """Count the request against its key's limits; RateLimited when over one."""
        held = outcome.held = Held()
        if self.backend is None or caller is None or caller.rate_limit is None:
            return held
        limit = caller.rate_limit
        tokens = reserve_of(body) if limit.tpm or self._any_provider else 0.0
        entries = _entries(f"key:{caller.name}", limit, tokens)
        wait, which = await self._take(entries)
        if wait > 0:
            name, per_minute = entries[which][0], int(entries[which][1])
            what = "tokens per minute (tpm)" if name.endswith(":tpm") else "requests per minute (rpm)"
            outcome.limited = "key_" + name.rsplit(":", 1)[1]
            raise RateLimited(
                f"key '{caller.name}' is over its rate limit of {per_minute} {what}: "
                f"retry in {_seconds(wait)}",
                retry_after=wait,
                limit=outcome.limited,
            )
        if limit.tpm:
            held.key, held.key_limit, held.reserved = caller.name, limit, tokens
        return held

    async def target(self, provider: Provider, held: Held, body: dict[str, Any]) -> tuple[float, str]:
        """Count an attempt against its provider's limits: (0.0, "") admitted, else the
        wait and which limit (the target is skipped like an unhealthy one)."""
        limit = provider.rate_limit
        if self.backend is None or limit is None:
            return 0.0, ""
        tokens = held.reserved or (reserve_of(body) if limit.tpm else 0.0)
        entries = _entries(f"provider:{provider.name}", limit, tokens)
        wait, which = await self._take(entries)
        if wait > 0:
            return wait, "provider_" + entries[which][0].rsplit(":", 1)[1]
        if limit.tpm:
            held.providers[provider.name] = (tokens, float(limit.tpm))
        return 0.0, ""

    async def settle(self, held: Held, usage: dict[str, Any] | None, provider: Provider | None) -> None:
        """Correct the tokens reserved with what the answer used (none came: a refund)."""
        if self.backend is None or (held.key is None and not held.providers):
            return
        used = _total(usage)
        try:
            if held.key is not None and held.key_limit is not None and held.key_limit.tpm:
                await self.backend.adjust(
                    f"key:{held.key}:tpm", float(held.key_limit.tpm), MINUTE, used - held.reserved
                )
            for name, (reserved, tpm) in held.providers.items():
                # only the target that answered used tokens; the others' reservations go back
                charged = used if provider is not None and provider.name == name else 0.0
                await self.backend.adjust(f"provider:{name}:tpm", tpm, MINUTE, charged - reserved)
        except LimitsUnavailable:
            self._down()

    async def _take(self, entries: list[Entry]) -> tuple[float, int]:
        if not entries:
            return 0.0, -1
        assert self.backend is not None
        try:
            wait = await self.backend.take(entries)
        except LimitsUnavailable:
            self._down()
            if self.closed:
                raise Unavailable("rate limits cannot be checked: their store is unreachable") from None
            return 0.0, -1
        if self._outage:
            self._outage = False
            metrics.limits_up(True)
            logs.event("limits store reachable again: limits enforced")
        return wait

    def _down(self) -> None:
        if not self._outage:
            self._outage = True
            metrics.limits_up(False)
            how = "refusing requests (on_redis_error: closed)" if self.closed else "admitting requests"
            logs.event(f"limits store unreachable: {how}", level=logging.WARNING)


def _total(usage: dict[str, Any] | None) -> float:
    if not usage:
        return 0.0
    total = usage.get("total_tokens")
    if isinstance(total, (int, float)):
        return float(total)
    return float(usage.get("prompt_tokens") or 0) + float(usage.get("completion_tokens") or 0)


def _seconds(wait: float) -> str:
    return f"{max(1, int(wait + 0.999))}s"


class MemoryBackend:
    """The limits of one ``gw serve``: a table every worker maps (``gw._fast.counters``),
    so that all its workers count together. Without ``gw serve`` (a plain Granian run,
    tests in process), a table of this process alone."""

    def __init__(self, path: str | None) -> None:
        from ._fast.counters import Table

        self.table = Table(path)

    async def take(self, entries: Sequence[Entry]) -> tuple[float, int]:
        now = time.time()
        table = self.table
        for i, (key, limit, period, cost) in enumerate(entries):
            wait = table.take(key.encode(), now, limit, period, cost)
            if wait > 0:
                for key_, limit_, period_, cost_ in entries[:i]:  # all or none
                    table.adjust(key_.encode(), now, limit_, period_, -cost_)
                return wait, i
        return 0.0, -1

    async def adjust(self, key: str, limit: float, period: float, delta: float) -> None:
        self.table.adjust(key.encode(), time.time(), limit, period, delta)

    async def aclose(self) -> None:
        return None


class RedisBackend:
    """The limits of every replica sharing one Redis (``gw.limits_redis``): one script a
    decision. Its scripts load on the first call (and again after a Redis restart)."""

    def __init__(self, url: str) -> None:
        from .limits_redis import RedisLimits

        self.redis = RedisLimits(url)

    async def take(self, entries: Sequence[Entry]) -> tuple[float, int]:
        from .limits_redis import Take

        return await self.redis.take_which([Take(*entry) for entry in entries])

    async def adjust(self, key: str, limit: float, period: float, delta: float) -> None:
        await self.redis.adjust(key, limit, period, delta)

    async def aclose(self) -> None:
        await self.redis.close()


def backend_of(tables: Tables) -> Backend | None:
    """The backend the tables' limits need (None when no key or provider has one)."""
    if not any(k.rate_limit for k in tables.auth.keys_by_digest.values()) and not any(
        p.rate_limit for p in tables.providers.values()
    ):
        return None
    if tables.limits.backend == "redis":
        assert tables.limits.redis_url is not None
        return RedisBackend(tables.limits.redis_url)
    return MemoryBackend(os.environ.get("GW_LIMITS_FILE") or None)
