"""gw's limits shared by every replica, in Redis: rates (GCRA), concurrency leases, budgets.

    limits = RedisLimits("redis://127.0.0.1:6379/0")
    await limits.start()                                   # loads the scripts; LimitsUnavailable if down
    wait = await limits.take_many([Take("app:rpm", 600, 60, 1), Take("app:tpm", 200_000, 60, 1200)])
    if wait: raise RateLimited(..., retry_after=wait)      # nothing was taken
    await limits.adjust("app:tpm", 200_000, 60, 830 - 1200)  # the estimate, corrected from usage
    if await limits.acquire("app:conc", 20, lease_id, ttl=60): ... finally: await limits.release(...)
    total = await limits.spend("app:2026-12", 0.0042, period_end_unix)

Each decision is one round trip: one Lua script (EVALSHA; after a Redis restart or
SCRIPT FLUSH the first call gets NOSCRIPT, loads the script and runs it again). Scripts
read the clock with Redis' ``TIME``, so replicas with skewed clocks agree. Every key is
``{prefix}{kind}:{key}`` (kind ``rate``, ``lease``, ``budget``) and expires by itself.

Rates: GCRA, the token bucket of capacity ``limit`` refilled over ``period`` (no burst
above the period's total). Per key Redis holds ``tat``, the theoretical arrival time:
when the bucket would be full again. With the emission interval ``T = period / limit``:

    new_tat = max(tat, now) + cost * T
    admitted  iff  new_tat - now <= period      (store tat = new_tat, PX new_tat - now)
    refused:  wait = new_tat - now - period     (nothing stored)

A missing key is a full bucket (``tat <= now``); the key expires when the bucket is
full again, so it never lives longer than ``period`` after a take. A ``cost`` above
``limit`` can never be admitted: ``take`` returns ``math.inf``. Times are seconds
since ``EPOCH`` (doubles keep ~15 ns there), compared with ``SLACK`` (1 µs) of
rounding room: a bucket holds at most ``limit + 1µs / T`` units.

Failures: a refused connection, a timeout (``timeout``, 0.25 s, for connecting and
for each reply) or any Redis error raises ``LimitsUnavailable`` at once, never
retried inside the call; the pool reconnects by itself on the next call once Redis
is back. Keys of one ``take_many`` must live on one node (no Redis Cluster).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from gw.errors import LimitsUnavailable

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["LimitsUnavailable", "RedisLimits", "Take", "require_redis"]

INSTALL_HINT = "the redis package is not installed: install gw[redis] (pip install 'gw[redis]')"

# Seconds subtracted from Redis' TIME in the scripts: small numbers keep more precision.
EPOCH = 1_700_000_000

# now: seconds since EPOCH, from the Redis server's clock.
_NOW = f"""local _t = redis.call('TIME')
local now = (tonumber(_t[1]) - {EPOCH}) + tonumber(_t[2]) / 1000000
"""
# now: Unix milliseconds, from the Redis server's clock.
_NOW_MS = """local _t = redis.call('TIME')
local now = tonumber(_t[1]) * 1000 + math.floor(tonumber(_t[2]) / 1000)
"""

# KEYS: one rate key per entry; ARGV: limit, period, cost per entry. Admits all or none.
# Returns '0' (admitted, every tat stored), or the largest wait in seconds ('inf': a cost above its
# limit) and the 0-based index of the entry that waits it: '1.500000 1'.
TAKE_LUA = (
    _NOW
    + """
local slack = 0.000001
local tats, wait, which = {}, 0, 0
for i = 1, #KEYS do
  local limit, period, cost = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  if cost > limit then return 'inf ' .. (i - 1) end
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  local new_tat = tat + cost * period / limit
  local w = new_tat - now - period
  if w > slack and w > wait then wait, which = w, i - 1 end
  tats[i] = new_tat
end
if wait > 0 then return string.format('%.6f %d', wait, which) end
for i = 1, #KEYS do
  local ms = math.ceil((tats[i] - now) * 1000)
  if ms > 0 then redis.call('SET', KEYS[i], string.format('%.17g', tats[i]), 'PX', ms) end
end
return '0'
"""
)

# KEYS[1]: a rate key; ARGV: limit, period, delta (cost units; negative refunds).
# A refund stops at a full bucket (tat = now); a charge is kept whole, even past the
# limit (a debt later requests wait out). Returns the wait before anything is admitted.
ADJUST_LUA = (
    _NOW
    + """
local limit, period, delta = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + delta * period / limit
local ms = math.ceil((new_tat - now) * 1000)
if ms > 0 then
  redis.call('SET', KEYS[1], string.format('%.17g', new_tat), 'PX', ms)
else
  redis.call('DEL', KEYS[1])
end
return string.format('%.6f', math.max(0, new_tat - now - period))
"""
)

# Leases: KEYS[1] a ZSET of lease ids scored by their expiry (Unix ms, server clock).
# Expired leases go first, so a replica that died holding some frees them after ttl.
# The key expires with its last lease.
_EXPIRE_WITH_LAST = """
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
"""

# ARGV: limit, lease_id, ttl_ms. 1: held (taken, or already held and extended); 0: full.
ACQUIRE_LUA = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit, id, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
if not redis.call('ZSCORE', KEYS[1], id) and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, id)
"""
    + _EXPIRE_WITH_LAST
    + "return 1\n"
)

# ARGV: lease_id, ttl_ms. 1: extended; 0: not held (expired or released).
RENEW_LUA = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
"""
    + _EXPIRE_WITH_LAST
    + "return 1\n"
)

# Returns the number of leases held (not expired).
HELD_LUA = _NOW_MS + "return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')\n"

# KEYS[1]: a budget key; ARGV: amount, period end (Unix ms). Returns the new total.
SPEND_LUA = """
local total = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return total
"""


class Take(NamedTuple):
    """One limit of a decision: ``Take("app:tpm", limit=200_000, period=60, cost=1200)``."""

    key: str
    limit: float
    period: float
    cost: float


def require_redis() -> None:
    """Raise ``ImportError`` with the install hint when redis-py is missing (config time)."""
    try:
        import redis.asyncio  # noqa: F401
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc


@dataclass(slots=True)
class _Script:
    lua: str
    sha: str = ""


class RedisLimits:
    """RedisLimits("redis://127.0.0.1:6379/0", prefix="gw:", timeout=0.25, max_connections=64)

    ``timeout`` bounds connecting and each reply; a call waits at most ``pool_timeout``
    (default: ``timeout``) for a free pooled connection, so a call fails within
    ``pool_timeout + timeout`` (or ``+ 2 * timeout`` when it must connect anew). Nothing is
    retried inside a call. One pool per event loop (per gw worker).
    """

    def __init__(
        self,
        url: str,
        prefix: str = "gw:",
        *,
        timeout: float = 0.25,
        pool_timeout: float | None = None,
        max_connections: int = 64,
    ) -> None:
        require_redis()
        import redis.asyncio
        from redis.backoff import NoBackoff
        from redis.exceptions import NoScriptError, RedisError
        from redis.retry import Retry

        self.url = url
        self.prefix = prefix
        options: dict[str, Any] = {}
        try:  # redis-py >= 7: its default "auto" is truthy and turns off the pool's check
            # that a pooled connection is still open, so a Redis restart would fail one
            # call per pooled connection instead of none
            from redis.maint_notifications import MaintNotificationsConfig

            options["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
        except ImportError:
            pass
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout if pool_timeout is None else pool_timeout,  # for a free connection
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # redis-py retries 3 times by default
            **options,
        )
        self._redis: redis.asyncio.Redis = redis.asyncio.Redis.from_pool(pool)  # closed with it
        self._noscript: type[Exception] = NoScriptError
        self._failures: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
        self._take = _Script(TAKE_LUA)
        self._adjust = _Script(ADJUST_LUA)
        self._acquire = _Script(ACQUIRE_LUA)
        self._renew = _Script(RENEW_LUA)
        self._held = _Script(HELD_LUA)
        self._spend = _Script(SPEND_LUA)

    def _scripts(self) -> tuple[_Script, ...]:
        return (self._take, self._adjust, self._acquire, self._renew, self._held, self._spend)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except self._failures as exc:
            raise LimitsUnavailable(f"redis {what}: {exc.__class__.__name__}: {exc}") from exc

    async def start(self) -> None:
        """Load every script (SCRIPT LOAD): a Redis that is down shows at start-up."""
        with self._errors("script load"):
            for script in self._scripts():
                script.sha = str(await self._redis.script_load(script.lua))

    async def close(self) -> None:
        await self._redis.aclose()

    async def ping(self) -> None:
        """One PING; raises ``LimitsUnavailable`` when Redis does not answer."""
        with self._errors("ping"):
            await cast(Awaitable[Any], self._redis.ping())

    async def _run(self, script: _Script, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        with self._errors("script"):
            if script.sha:
                try:
                    return await self._evalsha(script.sha, keys, args)
                except self._noscript:
                    pass  # Redis restarted (or SCRIPT FLUSH): load it again, once
            script.sha = str(await self._redis.script_load(script.lua))
            return await self._evalsha(script.sha, keys, args)

    def _evalsha(self, sha: str, keys: Sequence[str], args: Sequence[str | int | float]) -> Awaitable[Any]:
        return self._redis.evalsha(sha, len(keys), *keys, *args)

    # Rates -------------------------------------------------------------------------------

    async def take_many(self, takes: Sequence[Take]) -> float:
        """Admit all of ``takes`` (distinct keys) or none: 0.0, else the largest wait in seconds.

        ``math.inf``: some cost is above its limit and can never be admitted.
        """
        return (await self.take_which(takes))[0]

    async def take_which(self, takes: Sequence[Take]) -> tuple[float, int]:
        """``take_many``, and the index of the entry that waits longest (-1 when admitted)."""
        keys: list[str] = []
        args: list[float] = []
        for take in takes:
            _check_rate(take.limit, take.period)
            if not 0 <= take.cost < math.inf:
                raise ValueError(f"cost must be >= 0 and finite, got {take.cost!r}")
            keys.append(self._key("rate", take.key))
            args += (take.limit, take.period, take.cost)
        if len(set(keys)) != len(keys):
            raise ValueError("take_many: a key appears twice")
        if not keys:
            return 0.0, -1
        reply = await self._run(self._take, keys, [repr(float(a)) for a in args])
        parts = (reply.decode() if isinstance(reply, bytes) else str(reply)).split()
        if len(parts) < 2:
            return 0.0, -1
        return _seconds(parts[0]), int(parts[1])

    async def take(self, key: str, limit: float, period: float, cost: float = 1) -> float:
        """``take_many`` of one: 0.0 if admitted (and taken), else the seconds to wait."""
        return await self.take_many((Take(key, limit, period, cost),))

    async def adjust(self, key: str, limit: float, period: float, delta_cost: float) -> float:
        """Charge (``delta_cost > 0``) or refund (``< 0``) after the fact; returns the wait it leaves.

        A refund stops at a full bucket; a charge is kept whole (a debt later takes wait out).
        """
        _check_rate(limit, period)
        if not math.isfinite(delta_cost):
            raise ValueError(f"delta_cost must be finite, got {delta_cost!r}")
        args = [repr(float(limit)), repr(float(period)), repr(float(delta_cost))]
        return _seconds(await self._run(self._adjust, [self._key("rate", key)], args))

    # Concurrency -------------------------------------------------------------------------

    async def acquire(self, key: str, limit: int, lease_id: str, ttl: float) -> bool:
        """Hold one of ``limit`` slots for ``ttl`` seconds (renew long streams); False when full.

        Acquiring a lease already held extends it and is True.
        """
        args: list[str | int] = [int(limit), lease_id, _ms(ttl)]
        return bool(await self._run(self._acquire, [self._key("lease", key)], args))

    async def renew(self, key: str, lease_id: str, ttl: float) -> bool:
        """Extend a held lease to ``ttl`` seconds from now; False if it expired or was released."""
        return bool(await self._run(self._renew, [self._key("lease", key)], [lease_id, _ms(ttl)]))

    async def release(self, key: str, lease_id: str) -> bool:
        """Give the slot back; False if it was not held (expired, or released already)."""
        with self._errors("release"):
            removed = await self._redis.zrem(self._key("lease", key), lease_id)
        return bool(removed)

    async def held(self, key: str) -> int:
        """How many leases of ``key`` are held (not expired)."""
        return int(await self._run(self._held, [self._key("lease", key)], []))

    # Budgets -----------------------------------------------------------------------------

    async def spend(self, key: str, amount_usd: float, period_end_unix: float) -> float:
        """Add ``amount_usd``; the total expires at ``period_end_unix`` (then starts at 0). Returns it."""
        if not math.isfinite(amount_usd) or not math.isfinite(period_end_unix):
            raise ValueError(f"amount and period end must be finite, got {amount_usd!r}, {period_end_unix!r}")
        args: list[str | int] = [repr(float(amount_usd)), math.ceil(period_end_unix * 1000)]
        return float(await self._run(self._spend, [self._key("budget", key)], args))

    async def spent(self, key: str) -> float:
        """The total spent in the current period (0.0 when none)."""
        with self._errors("get"):
            value = await self._redis.get(self._key("budget", key))
        return float(value) if value is not None else 0.0

    def _key(self, kind: str, key: str) -> str:
        return f"{self.prefix}{kind}:{key}"


def _check_rate(limit: float, period: float) -> None:
    if not 0 < limit < math.inf or not 0 < period < math.inf:
        raise ValueError(f"limit and period must be > 0 and finite, got {limit!r} and {period!r}")


def _ms(seconds: float) -> int:
    if not 0 < seconds < math.inf:
        raise ValueError(f"ttl must be > 0, got {seconds!r}")
    return max(1, math.ceil(seconds * 1000))


def _seconds(reply: bytes | str) -> float:
    value = float(reply)
    return value if value > 0 else 0.0
