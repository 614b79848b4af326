"""gw.cache: the key, which requests take part, Cache-Control, the memory LRU, Redis (a real
redis-server) up and down."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import redis

from gw import metrics
from gw.cache import (
    MAX_ENTRY_BYTES,
    MemoryCache,
    RedisCache,
    ResponseCache,
    cache_key,
    cacheable,
    directives,
)
from gw.call import Operation
from gw.config.tables import Cache, CacheBackend, CacheNamespace
from gw.context import CacheStatus, Outcome
from tests.redis_server import RedisServer

T = TypeVar("T")
CHAT = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def key(body: dict[str, Any], namespace: str = "app", operation: str = Operation.CHAT, stream: bool = False) -> str:
    return cache_key(namespace, operation, str(body.get("model")), stream, body)


# -- the key


def test_the_order_of_keys_does_not_change_the_key_even_nested():
    reordered = {
        "max_tokens": 5,
        "messages": [{"content": "hi", "role": "user"}],
        "model": "gpt",
    }
    assert key(reordered) == key(CHAT)
    assert len(key(CHAT)) == 64 and int(key(CHAT), 16) >= 0


@pytest.mark.parametrize(
    "extra",
    [
        {"user": "alice"},
        {"safety_identifier": "hash-of-alice"},
        {"metadata": {"user_id": "alice"}},
        {"prompt_cache_key": "conversation-7"},
        {"stream": False},
    ],
)
def test_fields_that_do_not_change_the_answer_are_left_out_of_the_key(extra):
    assert key({**CHAT, **extra}) == key(CHAT)
    assert key({**CHAT, **extra}, operation=Operation.MESSAGES) == key(CHAT, operation=Operation.MESSAGES)


def test_a_response_object_echoes_user_and_metadata_so_on_responses_they_stay_in_the_key():
    body = {"model": "gpt", "input": "hi"}
    assert key({**body, "user": "alice"}, operation=Operation.RESPONSES) != key(body, operation=Operation.RESPONSES)
    assert key({**body, "metadata": {"a": "1"}}, operation=Operation.RESPONSES) != key(
        body, operation=Operation.RESPONSES
    )
    assert key({**body, "stream": True}, operation=Operation.RESPONSES) == key(body, operation=Operation.RESPONSES)


@pytest.mark.parametrize(
    "change",
    [
        {"messages": [{"role": "user", "content": "hello"}]},
        {"max_tokens": 6},
        {"temperature": 0},
        {"service_tier": "flex"},
        {"stream_options": {"include_usage": True}},
        {"tools": []},
    ],
)
def test_fields_that_shape_the_answer_change_the_key(change):
    assert key({**CHAT, **change}) != key(CHAT)


def test_namespace_endpoint_model_and_stream_each_change_the_key():
    base = key(CHAT)
    assert key(CHAT, namespace="other") != base
    assert key(CHAT, namespace="") != base
    assert key(CHAT, operation=Operation.COMPLETIONS) != base
    assert key(CHAT, stream=True) != base
    assert cache_key("app", Operation.CHAT, "gpt-4o", False, CHAT) != base  # the requested model


# -- which requests take part


@pytest.mark.parametrize(
    ("operation", "body", "expected"),
    [
        (Operation.CHAT, CHAT, True),
        (Operation.CHAT, {**CHAT, "n": 1}, True),
        (Operation.CHAT, {**CHAT, "n": 2}, False),
        (Operation.CHAT, {**CHAT, "temperature": 0}, True),
        (Operation.CHAT, {**CHAT, "temperature": 0.0}, True),
        (Operation.CHAT, {**CHAT, "temperature": 0.7}, False),
        (Operation.CHAT, {**CHAT, "temperature": 0.7, "seed": 42}, True),
        (Operation.COMPLETIONS, {"model": "gpt", "prompt": "x", "n": 3}, False),
        (Operation.MESSAGES, {**CHAT, "temperature": 1}, False),
        (Operation.EMBEDDINGS, {"model": "e", "input": "x"}, True),
        (Operation.RESPONSES, {"model": "gpt", "input": "hi"}, True),
        (Operation.RESPONSES, {"model": "gpt", "input": "hi", "previous_response_id": "resp_1"}, False),
        (Operation.RESPONSES, {"model": "gpt", "input": "hi", "conversation": "conv_1"}, False),
        (Operation.RESPONSES, {"model": "gpt", "input": "hi", "background": True}, False),
        (Operation.RESPONSES, {"model": "gpt", "input": "hi", "background": False}, True),
        (Operation.RESPONSES_COMPACT, {"model": "gpt", "input": "hi"}, False),
        (Operation.RESPONSES_INPUT_TOKENS, {"model": "gpt", "input": "hi"}, False),
        (Operation.COUNT_TOKENS, CHAT, False),
    ],
)
def test_cacheable_requests(operation, body, expected):
    assert cacheable(operation, body) is expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, (True, True)),
        (b"", (True, True)),
        (b"max-age=60", (True, True)),
        (b"no-cache", (False, True)),
        (b"No-Cache", (False, True)),
        (b"max-age=0, no-cache", (False, True)),
        (b"no-store", (False, False)),
        (b"no-cache,no-store", (False, False)),
    ],
)
def test_cache_control_says_whether_to_read_and_write(header, expected):
    assert directives(header) == expected


# -- the memory store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())


def test_memory_drops_the_least_recently_used_past_max_entries():
    async def scenario() -> None:
        cache = MemoryCache(max_entries=3, ttl_s=60)
        for name in "abc":
            await cache.set(name, name.encode())
        assert await cache.get("a") == b"a"  # a is now the most recently used
        await cache.set("d", b"d")
        assert len(cache) == 3
        assert await cache.get("b") is None  # the least recently used went
        assert [await cache.get(k) for k in "acd"] == [b"a", b"c", b"d"]
        await cache.set("c", b"c2")  # replacing an entry does not grow the cache
        assert len(cache) == 3 and await cache.get("c") == b"c2"

    run(scenario)


def test_memory_entries_expire_ttl_after_they_were_stored():
    async def scenario() -> None:
        clock = Clock()
        cache = MemoryCache(max_entries=10, ttl_s=30, clock=clock)
        await cache.set("k", b"v")
        clock.now += 29.9
        assert await cache.get("k") == b"v"  # reading does not extend it
        clock.now += 0.1
        assert await cache.get("k") is None
        assert len(cache) == 0  # dropped when found expired
        assert cache.health() == {"entries": 0} and cache.up

    run(scenario)


def test_a_miss_stores_through_save_and_the_next_lookup_hits():
    async def scenario() -> None:
        cache = ResponseCache(Cache(CacheBackend.MEMORY), MemoryCache(10, 60))
        first = Outcome()
        hit, save = await cache.look_up("app", Operation.CHAT, "gpt", False, CHAT, None, first)
        assert hit is None and save is not None and first.cache is CacheStatus.MISS
        save(b'{"answer": 1}')
        second = Outcome()
        hit, save = await cache.look_up("app", Operation.CHAT, "gpt", False, CHAT, None, second)
        assert hit == b'{"answer": 1}' and save is None
        assert second.cache is CacheStatus.HIT and second.cache_hit
        other = Outcome()  # another key's namespace
        hit, _ = await cache.look_up("other", Operation.CHAT, "gpt", False, CHAT, None, other)
        assert hit is None and other.cache is CacheStatus.MISS

    run(scenario)


def test_shared_namespace_is_one_cache_for_every_key_and_no_store_bypasses_it():
    async def scenario() -> None:
        cache = ResponseCache(Cache(CacheBackend.MEMORY, namespace=CacheNamespace.SHARED), MemoryCache(10, 60))
        _, save = await cache.look_up("a", Operation.CHAT, "gpt", False, CHAT, None, Outcome())
        assert save is not None
        save(b"{}")
        hit, _ = await cache.look_up("b", Operation.CHAT, "gpt", False, CHAT, None, Outcome())
        assert hit == b"{}"
        bypassed = Outcome()
        hit, save = await cache.look_up("b", Operation.CHAT, "gpt", False, CHAT, b"no-store", bypassed)
        assert hit is None and save is None and bypassed.cache is CacheStatus.BYPASS
        fresh = Outcome()
        hit, save = await cache.look_up("b", Operation.CHAT, "gpt", False, CHAT, b"no-cache", fresh)
        assert hit is None and save is not None and fresh.cache is CacheStatus.MISS
        save(b'{"new": 1}')
        hit, _ = await cache.look_up("a", Operation.CHAT, "gpt", False, CHAT, None, Outcome())
        assert hit == b'{"new": 1}'

    run(scenario)


def test_requests_not_cacheable_get_no_status_and_answers_too_large_are_not_stored():
    async def scenario() -> None:
        store = MemoryCache(10, 60)
        cache = ResponseCache(Cache(CacheBackend.MEMORY), store)
        outcome = Outcome()
        assert await cache.look_up("a", Operation.CHAT, "gpt", False, {**CHAT, "n": 2}, None, outcome) == (None, None)
        assert outcome.cache is None
        _, save = await cache.look_up("a", Operation.CHAT, "gpt", False, CHAT, None, Outcome())
        assert save is not None
        save(b"x" * (MAX_ENTRY_BYTES + 1))
        assert len(store) == 0
        save(b"x" * MAX_ENTRY_BYTES)
        assert len(store) == 1

    run(scenario)


# -- the Redis store


class Lines(logging.Handler):
    """gw's events, as they are logged."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("gw")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_redis_stores_under_gw_cache_with_the_ttl_and_reads_it_back(redis_url):
    name = uuid.uuid4().hex

    async def scenario() -> tuple[bytes | None, bytes | None]:
        cache = RedisCache(redis_url, ttl_s=30)
        try:
            missing = await cache.get(name)
            cache.put(name, b"answer")  # in a task: the caller does not wait
            await asyncio.sleep(0)
            await cache.aclose()  # waits for the store under way
            cache = RedisCache(redis_url, ttl_s=30)
            return missing, await cache.get(name)
        finally:
            await cache.aclose()

    assert run(scenario) == (None, b"answer")
    client = redis.Redis.from_url(redis_url)
    assert 29_000 < client.pttl(f"gw:cache:{name}") <= 30_000
    client.close()


def test_redis_down_is_a_miss_and_a_store_not_made_logged_once_then_back(redis_server: RedisServer, lines):
    clock = Clock()

    async def scenario() -> None:
        cache = RedisCache(redis_server.url, ttl_s=60, clock=clock)
        try:
            await cache.set("k", b"v")
            assert await cache.get("k") == b"v" and cache.up
            redis_server.kill()
            assert await cache.get("k") is None  # refused: a miss, not an exception
            assert not cache.up
            await cache.set("k", b"w")  # does not raise
            cache.put("k", b"w")
            assert await cache.get("k") is None
            assert _gauge() == 0
            redis_server.start()  # empty, on the same port
            assert await cache.get("k") is None and not cache.up  # within a second of the failure: not tried
            clock.now += 1.0
            await cache.set("k", b"again")
            assert cache.up and await cache.get("k") == b"again"
            assert _gauge() == 1
        finally:
            await cache.aclose()

    run(scenario)
    down = [m for m in lines.messages if m.startswith("cache store unreachable")]
    back = [m for m in lines.messages if m.startswith("cache store reachable again")]
    assert len(down) == 1 and len(back) == 1


def test_redis_hung_is_a_miss_within_its_timeouts(redis_server: RedisServer):
    async def scenario() -> float:
        cache = RedisCache(redis_server.url, ttl_s=60)
        try:
            await cache.set("k", b"v")
            redis_server.pause()
            started = asyncio.get_running_loop().time()
            assert await cache.get("k") is None
            return asyncio.get_running_loop().time() - started
        finally:
            redis_server.resume()
            await cache.aclose()

    assert run(scenario) < 1.0


def _gauge() -> float:
    return float(metrics.CACHE_UP._value.get())
