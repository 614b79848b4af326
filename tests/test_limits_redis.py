"""gw.limits_redis against a real redis-server (tests/redis_server.py): rates, leases, budgets, outages."""

from __future__ import annotations

import asyncio
import importlib
import math
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import redis

import gw
from gw.limits_redis import LAZY_S, LimitsUnavailable, RedisLimits, Take, settled
from tests.redis_server import RedisServer

T = TypeVar("T")


def run(url: str, scenario: Callable[[RedisLimits], Awaitable[T]], prefix: str | None = None) -> T:
    """Run ``scenario`` on a started RedisLimits under a prefix of its own (the server is shared)."""

    async def main() -> T:
        limits = RedisLimits(url, prefix=prefix or f"t{uuid.uuid4().hex[:8]}:")
        await limits.start()
        try:
            return await scenario(limits)
        finally:
            await limits.close()

    return asyncio.run(main())


def raw(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


# Rates ---------------------------------------------------------------------------------


def test_sixty_rpm_admits_sixty_at_once_then_asks_to_wait_about_a_second(redis_url):
    async def scenario(limits: RedisLimits) -> tuple[list[float], float]:
        admitted = [await limits.take("app:rpm", 60, 60) for _ in range(60)]
        return admitted, await limits.take("app:rpm", 60, 60)

    admitted, wait = run(redis_url, scenario)
    assert admitted == [0.0] * 60
    assert 0.5 < wait <= 1.0


def test_a_refused_take_records_nothing(redis_url):
    async def scenario(limits: RedisLimits) -> list[float]:
        assert await limits.take("k", 2, 60, 2) == 0.0
        waits = [await limits.take("k", 2, 60) for _ in range(5)]
        return waits

    waits = run(redis_url, scenario)
    # each refusal waits ~30 s (one emission interval), not 30, 60, 90...: nothing was added
    assert all(29 < w <= 30 for w in waits), waits


def test_tokens_per_minute_count_the_cost(redis_url):
    async def scenario(limits: RedisLimits) -> list[float]:
        return [await limits.take("app:tpm", 1000, 60, cost) for cost in (600, 400, 1, 100)]

    first, second, one_more, hundred_more = run(redis_url, scenario)
    assert first == second == 0.0
    assert 0.0 < one_more <= 0.06  # one token: T = 60 s / 1000
    assert 5.9 < hundred_more <= 6.0


def test_a_cost_above_the_limit_is_never_admitted_and_takes_nothing(redis_url):
    async def scenario(limits: RedisLimits) -> tuple[float, float]:
        return await limits.take("tpm", 1000, 60, 1001), await limits.take("tpm", 1000, 60, 1000)

    never, whole_bucket = run(redis_url, scenario)
    assert never == math.inf
    assert whole_bucket == 0.0


def test_an_uneven_limit_admits_exactly_its_count(redis_url):
    # 60 / 7 is not exact in binary: the slack keeps the 7th in, the 8th out
    async def scenario(limits: RedisLimits) -> list[float]:
        return [await limits.take("rpm7", 7, 60) for _ in range(8)]

    waits = run(redis_url, scenario)
    assert waits[:7] == [0.0] * 7 and waits[7] > 8.0


def test_a_bucket_refills_at_the_limits_pace(redis_url):
    async def scenario(limits: RedisLimits) -> tuple[float, float, float]:
        assert await limits.take("fast", 10, 1, 10) == 0.0  # 10 per second, all taken
        refused = await limits.take("fast", 10, 1)
        await asyncio.sleep(0.25)
        return refused, await limits.take("fast", 10, 1, 2), await limits.take("fast", 10, 1, 1)

    refused, two, third = run(redis_url, scenario)
    assert 0.0 < refused <= 0.1
    assert two == 0.0  # 0.25 s refilled 2.5 tokens
    assert third > 0.0


def test_a_refund_gives_tokens_back_but_never_beyond_a_full_bucket(redis_url):
    async def scenario(limits: RedisLimits) -> list[float]:
        out = [await limits.take("tpm", 1000, 60, 1000)]
        out.append(await limits.take("tpm", 1000, 60, 500))  # refused
        out.append(await limits.adjust("tpm", 1000, 60, -500))  # the estimate was 500 too high
        out.append(await limits.take("tpm", 1000, 60, 500))  # now fits
        out.append(await limits.adjust("tpm", 1000, 60, -1_000_000))  # a huge refund: a full bucket
        out.append(await limits.take("tpm", 1000, 60, 1000))
        out.append(await limits.take("tpm", 1000, 60, 1))  # no credit beyond it
        return out

    full, refused, after_refund, fits, after_huge_refund, whole, one_more = run(redis_url, scenario)
    assert full == 0.0 and refused > 29
    assert after_refund == 0.0 and fits == 0.0
    assert after_huge_refund == 0.0 and whole == 0.0
    assert one_more > 0.0


def test_a_charge_after_the_fact_is_a_debt_later_takes_wait_out(redis_url):
    async def scenario(limits: RedisLimits) -> tuple[float, float, float]:
        assert await limits.take("tpm", 1000, 60, 900) == 0.0
        debt = await limits.adjust("tpm", 1000, 60, 300)  # used 1200: 200 over the limit
        return debt, await limits.take("tpm", 1000, 60, 1), await limits.adjust("tpm", 1000, 60, 0)

    debt, refused, unchanged = run(redis_url, scenario)
    assert 11.9 < debt <= 12.0  # 200 tokens at 0.06 s
    assert 11.9 < refused <= 12.06
    assert 11.8 < unchanged <= 12.0


def test_take_many_admits_all_or_none_and_returns_the_largest_wait(redis_url):
    async def scenario(limits: RedisLimits) -> tuple[float, float, list[float]]:
        rpm, tpm = Take("app:rpm", 10, 60, 1), Take("app:tpm", 100, 60, 90)
        assert await limits.take_many([rpm, tpm]) == 0.0
        refused = await limits.take_many([rpm, tpm._replace(cost=20)])  # tpm says no: rpm not taken
        both_refused = await limits.take_many([rpm._replace(cost=10), tpm._replace(cost=60)])
        singles = [await limits.take("app:rpm", 10, 60) for _ in range(10)]
        return refused, both_refused, singles

    refused, both_refused, singles = run(redis_url, scenario)
    assert 5.9 < refused <= 6.0  # 10 tokens over at 0.6 s each
    assert 29.9 < both_refused <= 30.0  # the larger of rpm's 6 s and tpm's 30 s
    assert singles == [0.0] * 9 + [singles[9]] and singles[9] > 5.0  # 1 + 9 taken: the refusals took nothing


def test_take_many_rejects_a_key_twice_and_bad_numbers(redis_url):
    async def scenario(limits: RedisLimits) -> None:
        with pytest.raises(ValueError, match="twice"):
            await limits.take_many([Take("a", 1, 60, 1), Take("a", 1, 60, 1)])
        with pytest.raises(ValueError, match="> 0"):
            await limits.take("a", 0, 60)
        with pytest.raises(ValueError, match=">= 0"):
            await limits.take("a", 1, 60, -1)
        with pytest.raises(ValueError, match="finite"):
            await limits.take("a", 1, 60, math.nan)
        with pytest.raises(ValueError, match="finite"):
            await limits.take("a", math.inf, 60)
        assert await limits.take_many([]) == 0.0

    run(redis_url, scenario)


def test_two_replicas_sharing_a_limit_never_admit_more_than_it(redis_url):
    prefix = f"t{uuid.uuid4().hex[:8]}:"

    async def main() -> tuple[int, float]:
        a, b = RedisLimits(redis_url, prefix=prefix), RedisLimits(redis_url, prefix=prefix)
        await asyncio.gather(a.start(), b.start())
        started = time.monotonic()
        try:
            waits = await asyncio.gather(
                *(replica.take_many([Take("shared:rpm", 50, 60, 1), Take("shared:tpm", 5000, 60, 80)])
                  for _ in range(150) for replica in (a, b))
            )  # fmt: skip
        finally:
            await asyncio.gather(a.close(), b.close())
        return sum(w == 0.0 for w in waits), time.monotonic() - started

    admitted, elapsed = asyncio.run(main())
    # 50 per minute: one more each 1.2 s at most (the tpm's 62 per minute is not the binding one)
    assert 50 <= admitted <= 50 + int(elapsed / 1.2), (admitted, elapsed)


def test_hundreds_of_decisions_in_flight_queue_for_the_pool_rather_than_fail(redis_url):
    async def scenario(limits: RedisLimits) -> list[float]:
        takes = [Take("busy:rpm", 10_000, 60, 1), Take("busy:tpm", 10**7, 60, 100)]
        return await asyncio.gather(*(limits.take_many(takes) for _ in range(300)))  # 64 connections

    assert run(redis_url, scenario) == [0.0] * 300


# Concurrency leases --------------------------------------------------------------------


def test_leases_up_to_the_limit_then_refused_and_release_frees_one(redis_url):
    async def scenario(limits: RedisLimits) -> list[Any]:
        got = [await limits.acquire("conc", 3, f"lease-{i}", ttl=30) for i in range(4)]
        again = await limits.acquire("conc", 3, "lease-0", ttl=30)  # already held: extended
        held = await limits.held("conc")
        released = await limits.release("conc", "lease-1")
        released_twice = await limits.release("conc", "lease-1")
        return [
            got,
            again,
            held,
            released,
            released_twice,
            await limits.acquire("conc", 3, "lease-3", ttl=30),
        ]

    got, again, held, released, released_twice, after = run(redis_url, scenario)
    assert got == [True, True, True, False]
    assert again is True and held == 3
    assert released is True and released_twice is False
    assert after is True


def test_an_expired_lease_frees_its_slot(redis_url):
    # a replica that crashed holding a lease never releases it: its ttl does
    async def scenario(limits: RedisLimits) -> tuple[bool, bool, int]:
        assert await limits.acquire("conc", 1, "crashed", ttl=0.2)
        refused = await limits.acquire("conc", 1, "next", ttl=10)
        await asyncio.sleep(0.3)
        return refused, await limits.acquire("conc", 1, "next", ttl=10), await limits.held("conc")

    refused, later, held = run(redis_url, scenario)
    assert refused is False and later is True and held == 1


def test_renew_keeps_a_long_stream_s_lease_and_fails_once_it_is_lost(redis_url):
    async def scenario(limits: RedisLimits) -> list[bool]:
        assert await limits.acquire("conc", 1, "stream", ttl=0.3)
        out = []
        for _ in range(3):
            await asyncio.sleep(0.15)
            out.append(await limits.renew("conc", "stream", ttl=0.3))
        out.append(await limits.acquire("conc", 1, "other", ttl=1))  # still held: 0.45 s > first ttl
        await asyncio.sleep(0.4)
        out.append(await limits.renew("conc", "stream", ttl=0.3))  # expired meanwhile
        out.append(await limits.renew("conc", "never-held", ttl=0.3))
        return out

    assert run(redis_url, scenario) == [True, True, True, False, False, False]


# Budgets -------------------------------------------------------------------------------


def test_spend_adds_up_and_spent_reads_it(redis_url):
    async def scenario(limits: RedisLimits) -> tuple[float, list[float], float]:
        before = await limits.spent("app:month")
        end = time.time() + 3600
        totals = [await limits.spend("app:month", amount, end) for amount in (0.0042, 1.5, 0.0008)]
        return before, totals, await limits.spent("app:month")

    before, totals, after = run(redis_url, scenario)
    assert before == 0.0
    assert totals == pytest.approx([0.0042, 1.5042, 1.505])
    assert after == pytest.approx(1.505)


def test_a_budget_expires_at_its_period_end(redis_url):
    async def scenario(limits: RedisLimits) -> tuple[float, float]:
        assert await limits.spend("app:day", 2.0, time.time() + 0.3) == 2.0
        during = await limits.spent("app:day")
        await asyncio.sleep(0.4)
        return during, await limits.spent("app:day")

    during, after = run(redis_url, scenario)
    assert during == 2.0 and after == 0.0


# Keys ----------------------------------------------------------------------------------


def test_every_key_is_under_the_prefix_and_expires(redis_url):
    prefix = f"t{uuid.uuid4().hex[:8]}:"

    async def scenario(limits: RedisLimits) -> None:
        assert await limits.take_many([Take("app:rpm", 60, 60, 1), Take("app:tpm", 1000, 60, 100)]) == 0.0
        await limits.adjust("app:tpm", 1000, 60, 50)
        assert await limits.acquire("app", 5, "a", ttl=30)
        assert await limits.acquire("app", 5, "b", ttl=90)
        await limits.spend("app:2026-12", 1.0, time.time() + 600)

    run(redis_url, scenario, prefix=prefix)
    client = raw(redis_url)
    ttls = {key: client.pttl(key) for key in client.scan_iter(match=f"{prefix}*")}
    client.close()
    assert set(ttls) == {
        f"{prefix}rate:app:rpm", f"{prefix}rate:app:tpm", f"{prefix}lease:app", f"{prefix}budget:app:2026-12",
    }  # fmt: skip
    assert 0 < ttls[f"{prefix}rate:app:rpm"] <= 1000  # one request of 60 per minute: 1 s to refill
    assert 8000 < ttls[f"{prefix}rate:app:tpm"] <= 9000  # 150 tokens at 60 ms
    assert 89_000 < ttls[f"{prefix}lease:app"] <= 90_000  # with its longest lease
    assert 599_000 < ttls[f"{prefix}budget:app:2026-12"] <= 600_000


# Outages -------------------------------------------------------------------------------


def _calls(limits: RedisLimits) -> list[Callable[[], Awaitable[Any]]]:
    """One of each call, on keys of its own."""
    return [
        limits.ping,
        lambda: limits.take("k", 10, 60),
        lambda: limits.take_many([Take("k", 10, 60, 1), Take("k2", 10, 60, 1)]),
        lambda: limits.adjust("k", 10, 60, -1),
        lambda: limits.acquire("c", 2, "x", ttl=5),
        lambda: limits.renew("c", "x", ttl=5),
        lambda: limits.release("c", "x"),
        lambda: limits.held("c"),
        lambda: limits.spend("b", 1.0, time.time() + 60),
        lambda: limits.spent("b"),
    ]


async def _each_raises_fast(limits: RedisLimits, bound: float) -> list[float]:
    took = []
    for call in _calls(limits):
        started = time.monotonic()
        with pytest.raises(LimitsUnavailable):
            await call()
        took.append(time.monotonic() - started)
    assert max(took) < bound, took
    return took


def test_a_killed_redis_raises_limits_unavailable_fast_and_a_restarted_one_serves_the_same_object(
    redis_server: RedisServer,
):
    async def scenario(limits: RedisLimits) -> None:
        for call in _calls(limits):
            await call()
        redis_server.kill()
        await _each_raises_fast(limits, bound=1.0)
        await _each_raises_fast(limits, bound=1.0)  # no retries, no backoff piling up
        redis_server.start()  # empty: no keys, no scripts (NOSCRIPT is handled in the call)
        assert await limits.take("after", 1, 60) == 0.0
        for call in _calls(limits):
            await call()
        assert await limits.take("after", 1, 60) > 0.0

    run(redis_server.url, scenario)


def test_a_restart_between_two_calls_goes_unnoticed(redis_server: RedisServer):
    # the pool's connections died with the old server: the pool checks and replaces them
    async def scenario(limits: RedisLimits) -> list[float]:
        await asyncio.gather(*(limits.take(f"k{i}", 10, 60) for i in range(8)))  # several pooled connections
        redis_server.kill()
        await asyncio.sleep(0.1)  # the loop runs on meanwhile, as in gw: the connections see the EOF
        await asyncio.to_thread(redis_server.start)
        return await asyncio.gather(*(limits.take(f"k{i}", 10, 60) for i in range(8)))

    assert run(redis_server.url, scenario) == [0.0] * 8


def test_a_hung_redis_raises_within_the_timeout_and_serves_again_when_it_wakes(redis_server: RedisServer):
    async def scenario(limits: RedisLimits) -> list[float]:
        assert await limits.take("k", 10, 60) == 0.0
        redis_server.pause()
        try:
            took = await _each_raises_fast(limits, bound=0.6)  # timeout 0.25 s: connect or reply
        finally:
            redis_server.resume()
        assert await limits.take("k", 10, 60) == 0.0
        return took

    took = run(redis_server.url, scenario)
    assert min(took) >= 0.2  # it did wait for the reply (0.25 s), not fail early


def test_a_script_flush_is_recovered_within_the_call(redis_url):
    async def scenario(limits: RedisLimits) -> float:
        client = raw(redis_url)
        client.script_flush()
        client.close()
        return await limits.take("k", 10, 60)

    assert run(redis_url, scenario) == 0.0


def test_start_on_a_redis_that_is_down_raises_limits_unavailable(redis_server: RedisServer):
    redis_server.kill()

    async def main() -> None:
        limits = RedisLimits(redis_server.url)
        try:
            with pytest.raises(LimitsUnavailable, match="redis script load: ConnectionError"):
                await limits.start()
        finally:
            await limits.close()

    asyncio.run(main())


def test_without_redis_py_the_module_imports_and_the_class_says_to_install_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "redis" or m.startswith("redis.")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.setattr(gw, "limits_redis", sys.modules["gw.limits_redis"])  # put back after
    monkeypatch.delitem(sys.modules, "gw.limits_redis")
    module = importlib.import_module("gw.limits_redis")  # gw imports it lazily: no redis needed here
    with pytest.raises(ImportError, match=r"install gw\[redis\]"):
        module.RedisLimits("redis://127.0.0.1:6379/0")


# Batches and whole decisions ---------------------------------------------------------------


def count_calls(limits: RedisLimits) -> list[int]:
    """Count ``limits``' script calls (round trips): ``calls[0]``."""
    calls = [0]
    run_script = limits._run

    async def counted(*args: Any) -> Any:
        calls[0] += 1
        return await run_script(*args)

    limits._run = counted  # type: ignore[method-assign]
    return calls


def test_concurrent_decisions_share_one_script_call_and_none_is_lost(redis_url):
    async def scenario(limits: RedisLimits) -> tuple[list[float], int]:
        calls = count_calls(limits)
        waits = await asyncio.gather(*(limits.take("k", 60, 60) for _ in range(100)))
        return waits, calls[0]

    waits, calls = run(redis_url, scenario)
    assert waits.count(0.0) == 60  # exactly the limit, in order: the batch runs its ops one by one
    assert calls <= 2  # 100 decisions of one loop tick: one round trip (two if the first left early)


def test_admit_refuses_a_spent_budget_and_a_full_lease_set_and_takes_nothing_then(redis_url):
    async def scenario(limits: RedisLimits) -> list[Any]:
        out: list[Any] = []
        take = [Take("k:rpm", 10, 60, 1)]
        assert await limits.admit(take, budget=("b", 1.0), lease=("c", 1, "l1", 30)) is None
        out.append(await limits.admit(take, budget=("b", 1.0), lease=("c", 1, "l2", 30)))  # lease full
        assert (await limits.settle(spend=("b", 1.5, time.time() + 60), release=("c", "l1")))[2] is True
        out.append(await limits.admit(take, budget=("b", 1.0), lease=("c", 1, "l3", 30)))  # budget spent
        out.append(await limits.held("c"))
        out.append(await limits.take_many([Take("k:rpm", 10, 60, 9)]))  # only one of 10 was taken
        return out

    concurrency, budget, held, wait = run(redis_url, scenario)
    assert concurrency.kind == "concurrency" and concurrency.value == 1
    assert budget.kind == "budget" and budget.value == 1.5
    assert held == 0 and wait == 0.0


def test_a_settlement_nobody_waits_on_goes_with_the_next_decision_or_within_lazy_s(redis_url):
    async def scenario(limits: RedisLimits) -> list[Any]:
        calls = count_calls(limits)
        assert await limits.acquire("c", 1, "a", ttl=30)
        release = limits.settle_soon(release=("c", "a"))
        assert calls[0] == 1 and not release.done()  # not sent by itself ...
        acquired = await limits.acquire("c", 1, "b", ttl=30)  # ... but ahead of the next decision
        out: list[Any] = [acquired, calls[0], release.result()]
        spent = limits.settle_soon(spend=("b", 2.0, time.time() + 60))
        await asyncio.sleep(LAZY_S * 3)  # alone: sent within LAZY_S
        out.append(settled(spent.result(), True))
        limits.settle_soon(spend=("b", 1.0, time.time() + 60))
        return out  # closed at once: the pending one is sent before the pool closes

    acquired, calls, released, spent = run(redis_url, scenario, prefix="lazy:")
    assert acquired is True and calls == 2 and released == b"-1 0.000000 1"
    assert spent == (2.0, 0.0, False)
    client = raw(redis_url)
    assert float(client.get("lazy:budget:b")) == 3.0
    client.close()
