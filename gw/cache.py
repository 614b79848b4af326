"""The response cache: a request asked again is answered with the bytes the first one got.

    cache = cache_of(tables.cache)                      # per worker; None when off
    hit, save = await cache.look_up(key_name, Operation.CHAT, "gpt-4o", False, body, cache_control, outcome)
    if hit is not None: ...                             # the stored answer: JSON, or a whole SSE stream
    save(data)                                          # a fresh 200 answer (a stream: once it ended well)

``cacheable`` decides which requests take part; ``cache_key`` names their entry:
SHA-256 over the namespace (the key's name, or "" with ``namespace: shared``), the
endpoint, the requested model, the stream flag and the body without the fields of
``IGNORED_FIELDS``, serialised with sorted keys. A streamed and a whole answer are
two entries: a hit replays a stream byte for byte.

Stores: ``MemoryCache``, an LRU of ``max_entries`` per worker process, and
``RedisCache``, shared by every worker and replica on one Redis (``gw:cache:<hex>``,
``SET ... PX ttl``). Neither ever fails a request: a Redis that cannot be reached is
a miss and a store not made, logged once per outage (and when it is back), shown in
``gw_cache_backend_up`` and ``/health/detailed``; while it is down it is tried again
at most once a second. Storing never delays an answer: Redis writes run in a task.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import partial
from types import MappingProxyType
from typing import Any, Protocol

import orjson

from . import logs, metrics
from .call import Operation
from .config.tables import Cache, CacheBackend, CacheNamespace
from .context import CacheStatus, Outcome

# The largest answer stored (a whole answer's JSON, or a stream's SSE bytes); larger ones are not.
MAX_ENTRY_BYTES = 1024 * 1024

# Body fields left out of the key, per endpoint: they do not change the answer. Who the
# end user is (``user``, ``safety_identifier``; ``metadata``: Anthropic's ``user_id``,
# OpenAI's tags of a stored completion), a backend's routing hint (``prompt_cache_key``)
# and ``stream`` (a part of the key of its own). Kept: ``service_tier`` (answers echo the
# tier that served them) and ``stream_options`` (``include_usage`` adds a chunk to the
# stream a hit replays). A Response object echoes ``user``, ``metadata``,
# ``safety_identifier`` and ``prompt_cache_key``: on /v1/responses they stay in the key,
# or a hit would hand one caller the values of another.
_WHO = frozenset({"user", "safety_identifier", "metadata", "prompt_cache_key", "stream"})
IGNORED_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        Operation.CHAT: _WHO,
        Operation.COMPLETIONS: _WHO,
        Operation.MESSAGES: _WHO,
        Operation.EMBEDDINGS: _WHO,
        Operation.RESPONSES: frozenset({"stream"}),
    }
)

# Redis keys: the prefix, then the hex digest.
REDIS_PREFIX = "gw:cache:"
# While Redis is down, a call tries it at most this often; the others are misses at once.
RETRY_S = 1.0

Save = Callable[[bytes], None]


def cacheable(operation: str, body: dict[str, Any]) -> bool:
    """Whether an answer to ``body`` may be stored and served again.

    Only ``POST`` /v1/chat/completions, /v1/completions, /v1/messages, /v1/responses and
    /v1/embeddings; and not when the request asks for variety (``n`` > 1; a ``temperature``
    above 0 given without a ``seed``) or depends on state kept by the backend (Responses'
    ``previous_response_id``, ``conversation``, ``background: true``). A request that
    leaves ``temperature`` out is cached.
    """
    if operation not in IGNORED_FIELDS:
        return False
    n = body.get("n")
    if n is not None and n != 1:
        return False
    temperature = body.get("temperature")
    if (
        isinstance(temperature, (int, float))
        and not isinstance(temperature, bool)
        and temperature > 0
        and body.get("seed") is None
    ):
        return False
    if operation == Operation.RESPONSES and (
        body.get("previous_response_id") is not None
        or body.get("conversation") is not None
        or body.get("background") is True
    ):
        return False
    return True


def cache_key(namespace: str, operation: str, model: str, stream: bool, body: dict[str, Any]) -> str:
    """The entry's name: ``cache_key("app", Operation.CHAT, "gpt-4o", False, body)`` -> 64 hex digits.

    The order of the body's keys does not matter, nor its fields in ``IGNORED_FIELDS``.
    """
    ignored = IGNORED_FIELDS.get(operation, frozenset())
    kept = {k: v for k, v in body.items() if k not in ignored}
    data = orjson.dumps([namespace, str(operation), model, stream, kept], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()


def directives(cache_control: bytes | None) -> tuple[bool, bool]:
    """(read, write) for a request's ``Cache-Control``: ``no-store`` neither, ``no-cache``
    write only (the fresh answer replaces the entry), anything else both."""
    if not cache_control:
        return True, True
    given = {d.strip().lower() for d in cache_control.split(b",")}
    if b"no-store" in given:
        return False, False
    if b"no-cache" in given:
        return False, True
    return True, True


class Store(Protocol):
    """Where entries live. ``get`` and ``set`` never raise: an unreachable store is a miss."""

    @property
    def up(self) -> bool: ...

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes) -> None: ...

    def put(self, key: str, value: bytes) -> None:
        """``set`` without making the caller wait."""
        ...

    def health(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


class MemoryCache:
    """MemoryCache(max_entries=10_000, ttl_s=3600): one worker process's entries, the least
    recently used dropped past ``max_entries``, each expiring ``ttl_s`` after it was stored."""

    __slots__ = ("max_entries", "ttl_s", "_clock", "_entries")

    def __init__(self, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key -> (expires, value)

    @property
    def up(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    async def set(self, key: str, value: bytes) -> None:
        self.put(key, value)

    def put(self, key: str, value: bytes) -> None:
        entries = self._entries
        entries[key] = (self._clock() + self.ttl_s, value)
        entries.move_to_end(key)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    def health(self) -> dict[str, Any]:
        return {"entries": len(self._entries)}  # this worker's

    async def aclose(self) -> None:
        self._entries.clear()


class RedisCache:
    """RedisCache("redis://127.0.0.1:6379/0", ttl_s=3600, timeout=0.25): every worker and
    replica on that Redis. A call fails within about 2 x ``timeout`` (``gw.limits_redis.connect``:
    no retries) and is then a miss, or a store not made."""

    def __init__(
        self,
        url: str,
        ttl_s: float,
        *,
        timeout: float = 0.25,
        max_connections: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from .limits_redis import connect, failures

        self.url = url
        self._px = max(1, math.ceil(ttl_s * 1000))
        self._redis = connect(url, timeout=timeout, max_connections=max_connections)
        self._failures = failures()
        self._clock = clock
        self._outage = False
        self._retry_at = 0.0
        self._pending: set[asyncio.Task[None]] = set()  # stores under way (``put``)

    @property
    def up(self) -> bool:
        """Whether Redis answered the last time it was asked."""
        return not self._outage

    async def get(self, key: str) -> bytes | None:
        if self._resting():
            return None
        try:
            value = await self._redis.get(REDIS_PREFIX + key)
        except self._failures as exc:
            self._down(exc)
            return None
        self._back()
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes) -> None:
        if self._resting():
            return
        try:
            await self._redis.set(REDIS_PREFIX + key, value, px=self._px)
        except self._failures as exc:
            self._down(exc)
            return
        self._back()

    def put(self, key: str, value: bytes) -> None:
        if self._resting():
            return
        task = asyncio.get_running_loop().create_task(self.set(key, value))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def health(self) -> dict[str, Any]:
        return {}

    async def aclose(self) -> None:
        """Close the pool once the stores under way are done (each within its timeouts)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self._redis.aclose()

    def _resting(self) -> bool:
        return self._outage and self._clock() < self._retry_at

    def _down(self, exc: BaseException) -> None:
        self._retry_at = self._clock() + RETRY_S
        if not self._outage:
            self._outage = True
            metrics.cache_up(False)
            logs.event(
                "cache store unreachable: requests are answered without it (misses)",
                level=logging.WARNING,
                error=f"{exc.__class__.__name__}: {exc}",
            )

    def _back(self) -> None:
        if self._outage:
            self._outage = False
            metrics.cache_up(True)
            logs.event("cache store reachable again: answers are cached")


class ResponseCache:
    """The ``cache`` section on its store: what a request reads and writes (``look_up``)."""

    __slots__ = ("config", "store", "_shared")

    def __init__(self, config: Cache, store: Store) -> None:
        self.config = config
        self.store = store
        self._shared = config.namespace is CacheNamespace.SHARED
        metrics.cache_up(store.up)

    async def look_up(
        self,
        key_name: str | None,
        operation: str,
        model: str,
        stream: bool,
        body: dict[str, Any],
        cache_control: bytes | None,
        outcome: Outcome,
    ) -> tuple[bytes | None, Save | None]:
        """(the stored answer on a hit, what stores the fresh one when it should be stored).

        Sets ``outcome.cache`` (``x-gw-cache``) on a cacheable request: ``hit``, ``miss``,
        or ``bypass`` (``Cache-Control: no-store``).
        """
        if not cacheable(operation, body):
            return None, None
        read, write = directives(cache_control)
        if not write:
            outcome.cache = CacheStatus.BYPASS
            return None, None
        key = cache_key("" if self._shared or key_name is None else key_name, operation, model, stream, body)
        if read:
            hit = await self.store.get(key)
            if hit is not None:
                outcome.cache = CacheStatus.HIT
                outcome.cache_hit = True
                return hit, None
        outcome.cache = CacheStatus.MISS
        return None, partial(self._save, key)

    def _save(self, key: str, answer: bytes) -> None:
        if len(answer) <= MAX_ENTRY_BYTES:
            self.store.put(key, answer)

    def health(self) -> dict[str, Any]:
        return {
            "backend": str(self.config.backend),
            "namespace": str(self.config.namespace),
            "up": self.store.up,
            **self.store.health(),
        }

    async def aclose(self) -> None:
        await self.store.aclose()


def cache_of(config: Cache) -> ResponseCache | None:
    """The cache the section configures (None: ``backend: none``). One per worker process."""
    if config.backend is CacheBackend.MEMORY:
        return ResponseCache(config, MemoryCache(config.max_entries, config.ttl_s))
    if config.backend is CacheBackend.REDIS:
        assert config.redis_url is not None
        return ResponseCache(config, RedisCache(config.redis_url, config.ttl_s))
    return None


__all__ = [
    "IGNORED_FIELDS",
    "MAX_ENTRY_BYTES",
    "MemoryCache",
    "RedisCache",
    "ResponseCache",
    "Store",
    "cache_key",
    "cache_of",
    "cacheable",
    "directives",
]
