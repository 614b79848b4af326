"""gw's own limits: each key's and provider's rates, each key's requests in flight and budget.

    limits = Limits(tables, backend)              # per runtime; the backend outlives reloads
    held = await limits.admit(caller, body, outcome)  # before routing: RateLimited (429) when over
    wait, which = await limits.target(provider, held, body)  # per attempt: > 0 skips that target
    await limits.settle(outcome)                  # once the answer ended: tokens corrected,
                                                  # cost charged, the request's slot given back

Rates (``rate_limit: {rpm, tpm}``) use GCRA, a token bucket whose capacity is the
minute's limit and which refills continuously: a key with ``rpm: 60`` may send 60
requests at once, then one a second; never a burst above the minute's total.
Requests are counted when admitted; tokens are reserved from an estimate (the
request's size / 4 + its max tokens) and corrected from the usage the backend
reported when the answer ends, streams included.

``max_concurrent``: each admitted request holds a lease until its answer's last
byte; leases expire ``LEASE_TTL`` after their last renewal (every ``RENEW_EVERY``
while held), so a replica that died cannot hold slots for ever. ``budget_usd``: the
key's spend in the current UTC day or month, from the models' ``price`` and the
usage; a request is refused once it reaches the amount (the one that crosses it
finishes), charged when it ends.

Backends (``limits.backend``): ``memory``, a table in a file every worker of one
``gw serve`` maps (``gw._fast.counters``: one instance, all its workers together),
or ``redis``, one Lua script op a decision, the ops of concurrent requests batched
into one round trip (every replica together). When Redis cannot be reached,
``limits.on_redis_error`` decides: ``open`` (default) admits and says so once per
outage (log, ``gw_limits_backend_up``, ``/health/detailed``), ``closed`` answers
503; either way it recovers by itself.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from . import logs, metrics
from .config.tables import ApiKey, Budget, BudgetPeriod, Provider, RateLimit, Tables
from .errors import LimitsUnavailable, RateLimited, Unavailable
from .limits_redis import Refused, Take

if TYPE_CHECKING:
    from .context import Outcome

MINUTE = 60.0
LEASE_TTL = 60.0  # a lease not renewed for this long is gone (its holder died)
RENEW_EVERY = 20.0

# (store key, amount): refused once the key's total reaches the amount
BudgetCheck = tuple[str, float]
# (store key, limit, lease id, ttl)
Lease = tuple[str, int, str, float]
# (store key, USD, the period's end in Unix seconds)
Spend = tuple[str, float, float]
# a settlement is done: (the budget's new total or None, whether the store was reached)
Settled = Callable[[float | None, bool], None]


class Backend(Protocol):
    """Where the limits' state lives (``MemoryBackend``, ``RedisBackend``); one a worker."""

    leases: dict[str, str]  # the leases this worker holds: id -> store key

    async def admit(
        self, takes: Sequence[Take], budget: BudgetCheck | None = None, lease: Lease | None = None
    ) -> Refused | None:
        """All or nothing: None when admitted (and recorded), else why not.
        Raises ``LimitsUnavailable``."""
        ...

    def settle(
        self,
        adjusts: Sequence[Take] = (),
        spend: Spend | None = None,
        release: tuple[str, str] | None = None,
        done: Settled | None = None,
    ) -> None:
        """Charge (or refund) rates after the fact, add a spend, give a lease back, without
        waiting: ``done(the budget's new total or None, whether the store was reached)``
        once it is done."""
        ...

    async def renew(self, leases: Sequence[tuple[str, str]]) -> None: ...

    async def spent(self, key: str) -> float: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class Held:
    """What one request was admitted with, to settle when it ends."""

    key: str | None = None  # the key's name when its tokens are limited
    key_limit: RateLimit | None = None
    reserved: float = 0.0  # tokens reserved
    # provider -> (tokens reserved there, its tpm)
    providers: dict[str, tuple[float, float]] = field(default_factory=dict)
    lease: tuple[str, str] | None = None  # (store key, lease id): a slot of max_concurrent
    budget: tuple[str, str, float] | None = None  # (key name, store key, period end): to charge


def reserve_of(body: dict[str, Any]) -> float:
    """The tokens a request may use, before it runs: its size / 4, plus its max tokens."""
    limit = body.get("max_tokens") or body.get("max_completion_tokens") or body.get("max_output_tokens")
    extra = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else 0
    return len(orjson.dumps(body)) / 4 + extra


def _entries(prefix: str, limit: RateLimit | None, tokens: float) -> list[Take]:
    out: list[Take] = []
    if limit is None:
        return out
    if limit.rpm:
        out.append(Take(f"{prefix}:rpm", float(limit.rpm), MINUTE, 1.0))
    if limit.tpm:
        out.append(Take(f"{prefix}:tpm", float(limit.tpm), MINUTE, min(tokens, float(limit.tpm))))
    return out


class Period:
    """The current UTC day or month of a budget: its label and end, worked out again only
    when it is over."""

    __slots__ = ("period", "label", "end")

    def __init__(self, period: BudgetPeriod) -> None:
        self.period = period
        self.label = ""
        self.end = 0.0

    def at(self, now: float) -> tuple[str, float]:
        if now >= self.end:
            day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            if self.period is BudgetPeriod.DAY:
                self.label, end = day.strftime("%Y-%m-%d"), day + timedelta(days=1)
            else:
                first = day.replace(day=1)
                self.label, end = first.strftime("%Y-%m"), (first + timedelta(days=32)).replace(day=1)
            self.end = end.timestamp()
        return self.label, self.end


_PERIODS = {p: Period(p) for p in BudgetPeriod}


def budget_key(name: str, budget: Budget, now: float) -> tuple[str, float]:
    """The store key of a key's spend in the period ``now`` is in, and that period's end."""
    label, end = _PERIODS[budget.period].at(now)
    return f"key:{name}:usd:{label}", end


class Limits:
    """The tables' limits on a backend (``None``: no limit configured anywhere)."""

    __slots__ = ("backend", "closed", "_outage", "_any_provider", "_keys")

    def __init__(self, tables: Tables, backend: Backend | None) -> None:
        self.backend = backend
        self.closed = tables.limits.on_redis_error == "closed"
        self._outage = False
        if backend is not None:
            metrics.limits_up(True)
        self._any_provider = any(p.rate_limit for p in tables.providers.values())
        self._keys = tuple(tables.auth.keys_by_digest.values())

    @property
    def up(self) -> bool:
        """Whether the shared state answered the last time it was asked."""
        return not self._outage

    async def admit(self, caller: ApiKey | None, body: dict[str, Any], outcome: Outcome) -> Held:
        """Count the request against its key's limits; RateLimited when over one."""
        held = outcome.held = Held()
        backend = self.backend
        if backend is None or caller is None:
            return held
        limit = caller.rate_limit
        tokens = reserve_of(body) if limit is not None and (limit.tpm or self._any_provider) else 0.0
        takes = _entries(f"key:{caller.name}", limit, tokens)
        budget: BudgetCheck | None = None
        now = time.time()
        if caller.budget is not None:
            store_key, end = budget_key(caller.name, caller.budget, now)
            budget = (store_key, caller.budget.amount)
            held.budget = (caller.name, store_key, end)
        lease: Lease | None = None
        if caller.max_concurrent:
            lease = (f"key:{caller.name}:conc", caller.max_concurrent, _lease_id(), LEASE_TTL)
        if not takes and budget is None and lease is None:
            return held
        try:
            refused = await self._admit(takes, budget, lease)
        except asyncio.CancelledError:  # the client left: the lease may have been taken
            if lease is not None:
                backend.settle(release=(lease[0], lease[2]))
            raise
        if refused is not None:
            raise self._refusal(caller, refused, takes, outcome, held, now)
        if limit is not None and limit.tpm:
            held.key, held.key_limit, held.reserved = caller.name, limit, tokens
        if lease is not None and not self._outage:
            held.lease = (lease[0], lease[2])
            backend.leases[lease[2]] = lease[0]
            _renewing(backend)
        return held

    def _refusal(
        self, caller: ApiKey, refused: Refused, takes: list[Take], outcome: Outcome, held: Held, now: float
    ) -> RateLimited:
        if refused.kind == "budget":
            assert caller.budget is not None and held.budget is not None
            end = held.budget[2]
            period = "today" if caller.budget.period is BudgetPeriod.DAY else "this month"
            resets = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            outcome.limited = "key_budget"
            return RateLimited(
                f"key '{caller.name}' has used its budget of ${caller.budget.amount:g} for {period} "
                f"(UTC periods; ${refused.value:.4f} spent): it resets at {resets}",
                retry_after=end - now,
                limit=outcome.limited,
            )
        if refused.kind == "concurrency":
            outcome.limited = "key_concurrency"
            return RateLimited(
                f"key '{caller.name}' has {caller.max_concurrent} requests in flight, its "
                "max_concurrent: retry when one has ended",
                retry_after=1.0,
                limit=outcome.limited,
            )
        name, per_minute = takes[refused.which].key, int(takes[refused.which].limit)
        what = "tokens per minute (tpm)" if name.endswith(":tpm") else "requests per minute (rpm)"
        outcome.limited = "key_" + name.rsplit(":", 1)[1]
        return RateLimited(
            f"key '{caller.name}' is over its rate limit of {per_minute} {what}: "
            f"retry in {_seconds(refused.wait)}",
            retry_after=refused.wait,
            limit=outcome.limited,
        )

    async def target(self, provider: Provider, held: Held, body: dict[str, Any]) -> tuple[float, str]:
        """Count an attempt against its provider's limits: (0.0, "") admitted, else the
        wait and which limit (the target is skipped like an unhealthy one)."""
        limit = provider.rate_limit
        if self.backend is None or limit is None:
            return 0.0, ""
        tokens = held.reserved or (reserve_of(body) if limit.tpm else 0.0)
        takes = _entries(f"provider:{provider.name}", limit, tokens)
        refused = await self._admit(takes)
        if refused is not None:
            return refused.wait, "provider_" + takes[refused.which].key.rsplit(":", 1)[1]
        if limit.tpm:
            held.providers[provider.name] = (tokens, float(limit.tpm))
        return 0.0, ""

    def settle(self, outcome: Outcome) -> None:
        """The request ended: correct the tokens reserved with what the answer used (none
        came: a refund), charge its cost to the key's budget, give its slot back (on Redis
        with the next batch: the request's end waits for nothing)."""
        held, backend = outcome.held, self.backend
        if backend is None or held is None:
            return
        adjusts: list[Take] = []
        if held.key is not None or held.providers:
            used = _total(outcome.usage)
            if held.key is not None and held.key_limit is not None and held.key_limit.tpm:
                tpm = float(held.key_limit.tpm)
                adjusts.append(Take(f"key:{held.key}:tpm", tpm, MINUTE, used - held.reserved))
            answered = outcome.bound.provider.name if outcome.bound is not None else None
            for name, (reserved, tpm) in held.providers.items():
                # only the target that answered used tokens; the others' reservations go back
                charged = used if name == answered else 0.0
                adjusts.append(Take(f"provider:{name}:tpm", tpm, MINUTE, charged - reserved))
        spend: Spend | None = None
        if held.budget is not None:
            cost = outcome.cost_usd()
            if cost:
                spend = (held.budget[1], cost, held.budget[2])
        if held.lease is not None:
            backend.leases.pop(held.lease[1], None)
        if not adjusts and spend is None and held.lease is None:
            return
        payer = held.budget[0] if held.budget is not None and spend is not None else None
        backend.settle(adjusts, spend, held.lease, partial(self._settled, payer))

    def _settled(self, key_name: str | None, total: float | None, reached: bool) -> None:
        if not reached:
            self._down()
        elif key_name is not None and total is not None:
            metrics.key_spend(key_name, total)

    async def spend(self) -> dict[str, dict[str, Any]]:
        """Each key with a budget: what it spent in the current period (``/health/detailed``)."""
        backend, now = self.backend, time.time()
        out: dict[str, dict[str, Any]] = {}
        for key in self._keys:
            if key.budget is None:
                continue
            store_key, end = budget_key(key.name, key.budget, now)
            spent: float | None = None
            if backend is not None:
                try:
                    spent = await backend.spent(store_key)
                except LimitsUnavailable:
                    self._down()
            out[key.name] = {
                "spent_usd": None if spent is None else round(spent, 6),
                "budget_usd": key.budget.amount,
                "period": str(key.budget.period),
                "resets_at": datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        return out

    async def _admit(
        self, takes: list[Take], budget: BudgetCheck | None = None, lease: Lease | None = None
    ) -> Refused | None:
        if not takes and budget is None and lease is None:
            return None
        assert self.backend is not None
        try:
            refused = await self.backend.admit(takes, budget, lease)
        except LimitsUnavailable:
            self._down()
            if self.closed:
                raise Unavailable("rate limits cannot be checked: their store is unreachable") from None
            return None
        if self._outage:
            self._outage = False
            metrics.limits_up(True)
            logs.event("limits store reachable again: limits enforced")
        return refused

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


_LEASES = itertools.count()
_LEASE_PREFIX = os.urandom(6).hex()  # with the pid (workers may fork after import): unique


def _lease_id() -> str:
    return f"{_LEASE_PREFIX}{os.getpid():x}-{next(_LEASES):x}"


# Background work on the limits store (a lease given back by a request that was
# cancelled, renewals): kept here until done, its failure only logged.
_TASKS: set[asyncio.Task[Any]] = set()


def _later(work: Any) -> None:
    task = asyncio.get_running_loop().create_task(_quietly(work))
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


async def _quietly(work: Any) -> None:
    try:
        await work
    except LimitsUnavailable:
        pass  # the lease expires by itself
    except Exception:
        logging.getLogger("gw.limits").exception("a background limits update failed")


_RENEWERS: dict[int, asyncio.TimerHandle] = {}


def _renewing(backend: Backend) -> None:
    """Renew ``backend``'s leases every ``RENEW_EVERY`` while it holds any."""
    if id(backend) in _RENEWERS:
        return

    def tick() -> None:
        del _RENEWERS[id(backend)]
        if backend.leases:
            _later(backend.renew(list({(key, lease) for lease, key in backend.leases.items()})))
            _renewing(backend)

    _RENEWERS[id(backend)] = asyncio.get_running_loop().call_later(RENEW_EVERY, tick)


class MemoryBackend:
    """The limits of one ``gw serve``: a table every worker maps (``gw._fast.counters``),
    so that all its workers count together. Without ``gw serve`` (a plain Granian run,
    tests in process), a table of this process alone.

    A request in flight is +1 on its key's counter, which expires ``LEASE_TTL`` after its
    last change or renewal: a worker killed with requests in flight leaves them counted
    until that key has been idle for ``LEASE_TTL``."""

    def __init__(self, path: str | None) -> None:
        from ._fast.counters import Table

        self.table = Table(path)
        self.leases: dict[str, str] = {}

    async def admit(
        self, takes: Sequence[Take], budget: BudgetCheck | None = None, lease: Lease | None = None
    ) -> Refused | None:
        now = time.time()
        table = self.table
        if budget is not None:
            spent = table.get(budget[0].encode(), now)
            if spent >= budget[1]:
                return Refused("budget", value=spent)
        if lease is not None:
            key = lease[0].encode()
            if table.add(key, 1.0, now, lease[3], True) > lease[1]:
                table.add(key, -1.0, now, lease[3], True)
                return Refused("concurrency", value=lease[1])
        for i, (key_, limit, period, cost) in enumerate(takes):
            wait = table.take(key_.encode(), now, limit, period, cost)
            if wait > 0:
                for k, limit_, period_, cost_ in takes[:i]:  # all or none
                    table.adjust(k.encode(), now, limit_, period_, -cost_)
                if lease is not None:
                    table.add(lease[0].encode(), -1.0, now, lease[3], True)
                return Refused("rate", wait, i)
        return None

    def settle(
        self,
        adjusts: Sequence[Take] = (),
        spend: Spend | None = None,
        release: tuple[str, str] | None = None,
        done: Settled | None = None,
    ) -> None:
        now = time.time()
        table = self.table
        for key, limit, period, delta in adjusts:
            table.adjust(key.encode(), now, limit, period, delta)
        if release is not None:
            table.add(release[0].encode(), -1.0, now, LEASE_TTL, True)
        total = None
        if spend is not None:
            total = table.add(spend[0].encode(), spend[1], now, max(spend[2] - now, 1.0))
        if done is not None:
            done(total, True)

    async def renew(self, leases: Sequence[tuple[str, str]]) -> None:
        now = time.time()
        for key in {key for key, _ in leases}:
            self.table.add(key.encode(), 0.0, now, LEASE_TTL, True)

    async def spent(self, key: str) -> float:
        return self.table.get(key.encode(), time.time())

    async def aclose(self) -> None:
        return None


class RedisBackend:
    """The limits of every replica sharing one Redis (``gw.limits_redis``): one script op
    a decision, batched with the other requests' ops. The script loads on the first call
    (and again after a Redis restart)."""

    def __init__(self, url: str) -> None:
        from .limits_redis import RedisLimits

        self.redis = RedisLimits(url)
        self.leases: dict[str, str] = {}

    async def admit(
        self, takes: Sequence[Take], budget: BudgetCheck | None = None, lease: Lease | None = None
    ) -> Refused | None:
        return await self.redis.admit(takes, budget, lease)

    def settle(
        self,
        adjusts: Sequence[Take] = (),
        spend: Spend | None = None,
        release: tuple[str, str] | None = None,
        done: Settled | None = None,
    ) -> None:
        from .limits_redis import settled

        def reply(future: asyncio.Future[bytes]) -> None:
            if future.cancelled():
                return
            failed = future.exception()  # retrieved even without ``done``: no warning
            if done is not None:
                done(None if failed else settled(future.result(), spend is not None)[0], failed is None)

        self.redis.settle_soon(adjusts, spend, release).add_done_callback(reply)

    async def renew(self, leases: Sequence[tuple[str, str]]) -> None:
        await asyncio.gather(*(self.redis.renew(key, lease, LEASE_TTL) for key, lease in leases))

    async def spent(self, key: str) -> float:
        return await self.redis.spent(key)

    async def aclose(self) -> None:
        await self.redis.close()


def backend_of(tables: Tables) -> Backend | None:
    """The backend the tables' limits need (None when no key or provider has one)."""
    keys = tables.auth.keys_by_digest.values()
    if not any(k.rate_limit or k.max_concurrent or k.budget for k in keys) and not any(
        p.rate_limit for p in tables.providers.values()
    ):
        return None
    if tables.limits.backend == "redis":
        assert tables.limits.redis_url is not None
        return RedisBackend(tables.limits.redis_url)
    return MemoryBackend(os.environ.get("GW_LIMITS_FILE") or None)
