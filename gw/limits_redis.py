"""gw's limits shared by every replica, in Redis: rates (GCRA), concurrency leases, budgets.

    limits = RedisLimits("redis://127.0.0.1:6379/0")
    await limits.start()                                   # loads the script; LimitsUnavailable if down
    refused = await limits.admit([Take("app:rpm", 600, 60, 1), Take("app:tpm", 200_000, 60, 1200)],
                                 budget=("app:2026-12", 50.0), lease=("app", 20, lease_id, 60))
    if refused: raise RateLimited(...)                     # nothing was taken
    await limits.settle([Take("app:tpm", 200_000, 60, 830 - 1200)],   # the estimate, corrected
                        spend=("app:2026-12", 0.0042, period_end_unix), release=("app", lease_id))

Each decision is one op of one Lua script (EVALSHA; after a Redis restart or SCRIPT
FLUSH the first call gets NOSCRIPT, loads the script and runs it again), and the ops
of concurrent requests share one script call: one round trip for all of them. The
script reads the clock with Redis' ``TIME``, so replicas with skewed clocks agree.
Every key is ``{prefix}{kind}:{key}`` (kind ``rate``, ``lease``, ``budget``) and
expires by itself.

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
is back. Keys of one batch must live on one node (no Redis Cluster).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import orjson

from gw.errors import LimitsUnavailable

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["LimitsUnavailable", "RedisLimits", "Refused", "Take", "connect", "failures", "require_redis"]

INSTALL_HINT = "the redis package is not installed: install gw[redis] (pip install 'gw[redis]')"

# Ops nobody waits on (settle_soon) are sent with the next batch, or after this long.
LAZY_S = 0.02

# Seconds subtracted from Redis' TIME in the scripts: small numbers keep more precision.
EPOCH = 1_700_000_000

# now: seconds since EPOCH, from the Redis server's clock.
_NOW = f"""local _t = redis.call('TIME')
local now = (tonumber(_t[1]) - {EPOCH}) + tonumber(_t[2]) / 1000000
"""
# Every decision is one op of BATCH_LUA; ops queued by concurrent requests go to Redis
# together, one script call (one round trip) for all of them, run one after another.
# ARGV[1] is the ops as one JSON array (one argument: redis-py packs each argument in
# Python, ~1 us apiece); each op is [name, its first key's index in KEYS (0-based), its
# fields...]; a field ``k`` is a key's index from that first key (1-based), 0: none.
#   take   n, (k, limit, period, cost) * n, budget k, amount, lease k, limit, id, ttl_ms
#          -> '0' | 'rate <wait> <which>' | 'budget <spent>' | 'concurrency <held>'
#          all or nothing: rates (GCRA), the budget (refused once spent >= amount), a lease
#   settle n, (k, limit, period, delta) * n, spend k, amount, end_ms, release k, id
#          -> '<spent total, -1 without spend> <the wait the adjustments leave> <released 0|1>'
#   renew  k, id, ttl_ms -> '1' | '0' (not held)
#   held   k -> leases held          spent  k -> the total
# Rates: a missing key is a full bucket; an adjustment's refund stops at a full bucket, its
# charge is kept whole (a debt later takes wait out). Leases: a ZSET of lease ids scored by
# their expiry (Unix ms), expired ones dropped first (a replica that died frees its slots
# after ttl); the key expires with its last lease. Budgets: INCRBYFLOAT, expiring at the
# period's end.
BATCH_LUA = (
    _NOW
    + """local now_ms = tonumber(_t[1]) * 1000 + math.floor(tonumber(_t[2]) / 1000)
local slack = 0.000001
local out = {}
local function expire_with_last(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', key, last[2]) end
end
local function set_tat(key, tat)
  local ms = math.ceil((tat - now) * 1000)
  if ms > 0 then
    redis.call('SET', key, string.format('%.17g', tat), 'PX', ms)
  else
    redis.call('DEL', key)
  end
end
local ops = cjson.decode(ARGV[1])
for o = 1, #ops do
  local a = ops[o]
  local op, base = a[1], a[2]
  local function key(k) if k > 0 then return KEYS[base + k] end end
  local reply
  if op == 'take' then
    local n = a[3]
    local j = 4 + 4 * n
    local budget, amount = key(a[j]), a[j + 1]
    local lease, limit, id, ttl = key(a[j + 2]), a[j + 3], a[j + 4], a[j + 5]
    if budget then
      local spent = tonumber(redis.call('GET', budget)) or 0
      if spent >= amount then reply = string.format('budget %.17g', spent) end
    end
    if not reply and lease then
      redis.call('ZREMRANGEBYSCORE', lease, '-inf', now_ms)
      local held = redis.call('ZCARD', lease)
      if not redis.call('ZSCORE', lease, id) and held >= limit then reply = 'concurrency ' .. held end
    end
    local tats, wait, which = {}, 0, 0
    if not reply then
      for r = 0, n - 1 do
        local at = 4 + 4 * r
        local rlimit, period, cost = a[at + 1], a[at + 2], a[at + 3]
        if cost > rlimit then wait, which = math.huge, r; break end
        local tat = tonumber(redis.call('GET', key(a[at]))) or now
        if tat < now then tat = now end
        local new_tat = tat + cost * period / rlimit
        local w = new_tat - now - period
        if w > slack and w > wait then wait, which = w, r end
        tats[r + 1] = new_tat
      end
      if wait > 0 then reply = string.format('rate %.6f %d', wait, which) end
    end
    if not reply then
      for r = 0, n - 1 do set_tat(key(a[4 + 4 * r]), tats[r + 1]) end
      if lease then
        redis.call('ZADD', lease, now_ms + ttl, id)
        expire_with_last(lease)
      end
      reply = '0'
    end
  elseif op == 'settle' then
    local j, wait = 4, 0
    for r = 1, a[3] do
      local k, limit, period, delta = key(a[j]), a[j + 1], a[j + 2], a[j + 3]
      local tat = tonumber(redis.call('GET', k)) or now
      if tat < now then tat = now end
      local new_tat = tat + delta * period / limit
      set_tat(k, new_tat)
      wait = math.max(wait, new_tat - now - period)
      j = j + 4
    end
    local spend, total = key(a[j]), '-1'
    if spend then
      total = redis.call('INCRBYFLOAT', spend, string.format('%.17g', a[j + 1]))
      redis.call('PEXPIREAT', spend, string.format('%d', a[j + 2]))
    end
    local lease, released = key(a[j + 3]), 0
    if lease then released = redis.call('ZREM', lease, a[j + 4]) end
    reply = string.format('%s %.6f %d', total, wait, released)
  elseif op == 'renew' then
    local lease, id = key(a[3]), a[4]
    redis.call('ZREMRANGEBYSCORE', lease, '-inf', now_ms)
    reply = '0'
    if redis.call('ZSCORE', lease, id) then
      redis.call('ZADD', lease, 'XX', now_ms + a[5], id)
      expire_with_last(lease)
      reply = '1'
    end
  elseif op == 'held' then
    reply = tostring(redis.call('ZCOUNT', key(a[3]), '(' .. now_ms, '+inf'))
  elseif op == 'spent' then
    reply = redis.call('GET', key(a[3])) or '0'
  else
    return redis.error_reply('unknown op ' .. tostring(op))
  end
  out[#out + 1] = reply
end
return out
"""
)


class Take(NamedTuple):
    """One limit of a decision: ``Take("app:tpm", limit=200_000, period=60, cost=1200)``."""

    key: str
    limit: float
    period: float
    cost: float


class Refused(NamedTuple):
    """Why ``take`` refused: ``kind`` is ``rate`` (``wait`` seconds, the entry ``which``),
    ``budget`` (``value``: spent) or ``concurrency`` (``value``: leases held)."""

    kind: str
    wait: float = 0.0
    which: int = -1
    value: float = 0.0


def require_redis() -> None:
    """Raise ``ImportError`` with the install hint when redis-py is missing (config time)."""
    try:
        import redis.asyncio  # noqa: F401
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc


def connect(
    url: str, *, timeout: float = 0.25, pool_timeout: float | None = None, max_connections: int = 64
) -> redis.asyncio.Redis:
    """A client of ``url`` that fails fast: ``timeout`` for connecting and for each reply,
    ``pool_timeout`` (default: ``timeout``) to wait for a free pooled connection, never a
    retry inside a call (gw's limits and cache share these rules). ``aclose()`` closes its pool."""
    require_redis()
    import redis.asyncio
    from redis.backoff import NoBackoff
    from redis.retry import Retry

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
    return redis.asyncio.Redis.from_pool(pool)  # closed with it


def failures() -> tuple[type[BaseException], ...]:
    """What a call to Redis raises when Redis cannot answer: refused, reset, timed out, an error reply."""
    from redis.exceptions import RedisError

    return (RedisError, OSError, TimeoutError)


@dataclass(slots=True)
class _Script:
    lua: str
    sha: str = ""


# An op waiting for the next batch: its keys, its fields, the future of its reply.
_Op = tuple[list[str], list[str | int | float], "asyncio.Future[bytes]"]


class RedisLimits:
    """RedisLimits("redis://127.0.0.1:6379/0", prefix="gw:", timeout=0.25, max_connections=64)

    ``timeout`` bounds connecting and each reply; a call waits at most ``pool_timeout``
    (default: ``timeout``) for a free pooled connection. Nothing is retried inside a call.
    One instance per event loop (per gw worker).

    Calls are batched: each queues one op of ``BATCH_LUA`` and waits for its reply; one
    script call at a time carries every op queued meanwhile (those of one loop tick when
    Redis is idle, more under load). A batch that fails fails each of its calls with
    ``LimitsUnavailable``, within about ``2 * timeout`` of their call (the batch before
    it, then theirs).
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
        self.url = url
        self.prefix = prefix
        self._redis = connect(  # first: without redis-py, the ImportError that says what to install
            url, timeout=timeout, pool_timeout=pool_timeout, max_connections=max_connections
        )
        from redis.exceptions import NoScriptError

        self._noscript: type[Exception] = NoScriptError
        self._failures = failures()
        self._batch = _Script(BATCH_LUA)
        self._queue: list[_Op] = []
        self._sending: asyncio.Task[None] | None = None
        self._lazy: asyncio.TimerHandle | None = None  # a batch of ops nobody waits on

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except self._failures as exc:
            raise LimitsUnavailable(f"redis {what}: {exc.__class__.__name__}: {exc}") from exc

    async def start(self) -> None:
        """Load the script (SCRIPT LOAD): a Redis that is down shows at start-up."""
        with self._errors("script load"):
            self._batch.sha = str(await self._redis.script_load(self._batch.lua))

    async def close(self) -> None:
        self._flush()  # what settle_soon queued
        if self._sending is not None:
            await asyncio.gather(self._sending, return_exceptions=True)
        await self._redis.aclose()

    async def ping(self) -> None:
        """One PING; raises ``LimitsUnavailable`` when Redis does not answer."""
        with self._errors("ping"):
            await cast(Awaitable[Any], self._redis.ping())

    # The batch -----------------------------------------------------------------------------

    def _op(
        self, keys: list[str], fields: list[str | int | float], urgent: bool = True
    ) -> asyncio.Future[bytes]:
        """Queue an op; an ``urgent`` one is sent at once (with every op queued before it),
        another within ``LAZY_S``, or sooner with the next urgent one."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self._queue.append((keys, fields, future))
        if urgent:
            self._flush()
        elif self._lazy is None and self._sending is None:
            self._lazy = loop.call_later(LAZY_S, self._flush)
        return future

    def _flush(self) -> None:
        if self._lazy is not None:
            self._lazy.cancel()
            self._lazy = None
        if self._sending is None and self._queue:
            self._sending = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        try:
            while self._queue:
                ops, self._queue = self._queue, []
                keys: list[str] = []
                args: list[list[str | int | float]] = []
                for op_keys, fields, _ in ops:
                    args.append([fields[0], len(keys), *fields[1:]])
                    keys += op_keys
                try:
                    replies = await self._run(self._batch, keys, [orjson.dumps(args)])
                except LimitsUnavailable as exc:
                    for _, _, future in ops:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, _, future), reply in zip(ops, replies, strict=True):
                    if not future.done():
                        future.set_result(reply)
        finally:
            self._sending = None

    async def _run(self, script: _Script, keys: Sequence[str], args: Sequence[bytes]) -> Any:
        with self._errors("script"):
            if script.sha:
                try:
                    return await self._evalsha(script.sha, keys, args)
                except self._noscript:
                    pass  # Redis restarted (or SCRIPT FLUSH): load it again, once
            script.sha = str(await self._redis.script_load(script.lua))
            return await self._evalsha(script.sha, keys, args)

    def _evalsha(self, sha: str, keys: Sequence[str], args: Sequence[bytes]) -> Awaitable[Any]:
        return self._redis.evalsha(sha, len(keys), *keys, *args)

    async def _reply(self, keys: list[str], fields: list[str | int | float]) -> list[str]:
        reply = await self._op(keys, fields)
        return (reply.decode() if isinstance(reply, bytes) else str(reply)).split()

    # Decisions -----------------------------------------------------------------------------

    async def admit(
        self,
        takes: Sequence[Take],
        budget: tuple[str, float] | None = None,
        lease: tuple[str, int, str, float] | None = None,
    ) -> Refused | None:
        """Admit all or nothing: the rates ``takes`` (distinct keys), a ``budget`` (key,
        amount: refused once its spent total reaches the amount), a ``lease`` (key, limit,
        lease id, ttl: refused when ``limit`` other leases are held). None when admitted
        (all recorded), else why not; a rate whose cost is above its limit waits ``inf``."""
        keys: list[str] = []
        fields: list[str | int | float] = ["take", len(takes)]
        for take in takes:
            _check_rate(take.limit, take.period)
            if not 0 <= take.cost < math.inf:
                raise ValueError(f"cost must be >= 0 and finite, got {take.cost!r}")
            keys.append(self._key("rate", take.key))
            fields += (len(keys), float(take.limit), float(take.period), float(take.cost))
        if len(set(keys)) != len(keys):
            raise ValueError("take_many: a key appears twice")
        if budget is not None:
            keys.append(self._key("budget", budget[0]))
            fields += (len(keys), float(budget[1]))
        else:
            fields += (0, 0)
        if lease is not None:
            keys.append(self._key("lease", lease[0]))
            fields += (len(keys), int(lease[1]), lease[2], _ms(lease[3]))
        else:
            fields += (0, 0, "", 0)
        parts = await self._reply(keys, fields)
        if parts[0] == "0":
            return None
        if parts[0] == "rate":
            return Refused("rate", float(parts[1]), int(parts[2]))
        return Refused(parts[0], value=float(parts[1]))

    async def settle(
        self,
        adjusts: Sequence[Take] = (),
        spend: tuple[str, float, float] | None = None,
        release: tuple[str, str] | None = None,
    ) -> tuple[float | None, float, bool]:
        """After the fact: charge or refund rates (``Take.cost`` is the delta: a refund stops at
        a full bucket, a charge is kept whole), add to a budget (key, USD, the period's end
        in Unix seconds: the total expires then), give a lease back (key, lease id).
        Returns (the budget's new total or None, the wait the adjustments leave, released)."""
        return settled(await self.settle_soon(adjusts, spend, release, urgent=True), spend is not None)

    def settle_soon(
        self,
        adjusts: Sequence[Take] = (),
        spend: tuple[str, float, float] | None = None,
        release: tuple[str, str] | None = None,
        *,
        urgent: bool = False,
    ) -> asyncio.Future[bytes]:
        """``settle`` without waiting: sent with the next batch (within ``LAZY_S``); the
        future's reply is read by ``settled``. A request's end need not cost a round trip."""
        keys: list[str] = []
        fields: list[str | int | float] = ["settle", len(adjusts)]
        for take in adjusts:
            _check_rate(take.limit, take.period)
            if not math.isfinite(take.cost):
                raise ValueError(f"delta_cost must be finite, got {take.cost!r}")
            keys.append(self._key("rate", take.key))
            fields += (len(keys), float(take.limit), float(take.period), float(take.cost))
        if spend is not None:
            if not math.isfinite(spend[1]) or not math.isfinite(spend[2]):
                raise ValueError(f"amount and period end must be finite, got {spend[1]!r}, {spend[2]!r}")
            keys.append(self._key("budget", spend[0]))
            fields += (len(keys), float(spend[1]), math.ceil(spend[2] * 1000))
        else:
            fields += (0, 0, 0)
        if release is not None:
            keys.append(self._key("lease", release[0]))
            fields += (len(keys), release[1])
        else:
            fields += (0, "")
        return self._op(keys, fields, urgent)

    # One limit at a time (tests, tools) ----------------------------------------------------

    async def take_which(self, takes: Sequence[Take]) -> tuple[float, int]:
        """Admit all of ``takes`` or none: (0.0, -1), else (the largest wait, its index)."""
        if not takes:
            return 0.0, -1
        refused = await self.admit(takes)
        return (0.0, -1) if refused is None else (refused.wait, refused.which)

    async def take_many(self, takes: Sequence[Take]) -> float:
        """``take_which``'s wait: 0.0 when admitted; ``math.inf`` when a cost is above its limit."""
        return (await self.take_which(takes))[0]

    async def take(self, key: str, limit: float, period: float, cost: float = 1) -> float:
        """``take_many`` of one: 0.0 if admitted (and taken), else the seconds to wait."""
        return await self.take_many((Take(key, limit, period, cost),))

    async def adjust(self, key: str, limit: float, period: float, delta_cost: float) -> float:
        """Charge (``delta_cost > 0``) or refund (``< 0``) after the fact; returns the wait it leaves."""
        return (await self.settle([Take(key, limit, period, delta_cost)]))[1]

    async def acquire(self, key: str, limit: int, lease_id: str, ttl: float) -> bool:
        """Hold one of ``limit`` slots for ``ttl`` seconds (renew long streams); False when full.

        Acquiring a lease already held extends it and is True.
        """
        return await self.admit((), lease=(key, limit, lease_id, ttl)) is None

    async def renew(self, key: str, lease_id: str, ttl: float) -> bool:
        """Extend a held lease to ``ttl`` seconds from now; False if it expired or was released."""
        parts = await self._reply([self._key("lease", key)], ["renew", 1, lease_id, _ms(ttl)])
        return parts[0] == "1"

    async def release(self, key: str, lease_id: str) -> bool:
        """Give the slot back; False if it was not held (expired, or released already)."""
        return (await self.settle(release=(key, lease_id)))[2]

    async def held(self, key: str) -> int:
        """How many leases of ``key`` are held (not expired)."""
        return int((await self._reply([self._key("lease", key)], ["held", 1]))[0])

    async def spend(self, key: str, amount_usd: float, period_end_unix: float) -> float:
        """Add ``amount_usd``; the total expires at ``period_end_unix`` (then starts at 0). Returns it."""
        total = (await self.settle(spend=(key, amount_usd, period_end_unix)))[0]
        assert total is not None
        return total

    async def spent(self, key: str) -> float:
        """The total spent in the current period (0.0 when none)."""
        return float((await self._reply([self._key("budget", key)], ["spent", 1]))[0])

    def _key(self, kind: str, key: str) -> str:
        return f"{self.prefix}{kind}:{key}"


def settled(reply: bytes | str, spent: bool) -> tuple[float | None, float, bool]:
    """A settle op's reply: (the budget's new total when ``spent``, the wait left, released)."""
    parts = (reply.decode() if isinstance(reply, bytes) else str(reply)).split()
    return (float(parts[0]) if spent else None), _seconds(parts[1]), parts[2] == "1"


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
