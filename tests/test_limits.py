"""gw.limits in process, on the memory backend: reservations and their settlement."""

from __future__ import annotations

import asyncio
import time
import types
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gw import limits as limits_module
from gw.config import load_tables
from gw.config.tables import ApiKey, Budget, BudgetPeriod
from gw.context import Outcome
from gw.errors import RateLimited
from gw.limits import Limits, MemoryBackend, budget_key
from gw.limits_redis import Take

CONFIG = """
providers:
  a: {type: echo, rate_limit: {tpm: 1000}}
  b: {type: echo, rate_limit: {tpm: 1000}}
models:
  m: {targets: [{provider: a, model: echo}, {provider: b, model: echo}]}
"""


def test_a_reservation_on_a_target_that_did_not_answer_goes_back_and_the_answering_one_pays(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    tables = load_tables(config, environ={}, dotenv=None)
    limits = Limits(tables, MemoryBackend(None))
    a, b = tables.providers["a"], tables.providers["b"]
    body = {"model": "m", "messages": [], "max_tokens": 900}

    async def run() -> None:
        held = await limits.admit(None, body, Outcome())
        assert await limits.target(a, held, body) == (0.0, "")  # reserves ~910 on a: a tried and failed
        assert await limits.target(b, held, body) == (0.0, "")  # ... b answered
        assert (await limits.target(a, held, body))[0] > 0  # a's bucket is spent for now
        outcome = Outcome()
        outcome.held, outcome.usage = held, {"total_tokens": 50}
        outcome.bound = types.SimpleNamespace(provider=b, price=None)  # type: ignore[assignment]
        limits.settle(outcome)
        # a got its reservation back; b keeps what it used (50), not what it reserved
        again = await limits.admit(None, body, Outcome())
        assert await limits.target(a, again, body) == (0.0, "")
        assert await limits.target(b, again, body) == (0.0, "")

    asyncio.run(run())


def test_the_memory_backend_refuses_a_full_key_and_a_spent_budget_all_or_nothing() -> None:
    backend = MemoryBackend(None)
    take = [Take("k:rpm", 10, 60, 1)]

    async def run() -> None:
        assert await backend.admit(take, budget=("b", 1.0), lease=("c", 1, "l1", 30)) is None
        full = await backend.admit(take, budget=("b", 1.0), lease=("c", 1, "l2", 30))
        assert full is not None and full.kind == "concurrency"
        totals: list[float | None] = []
        backend.settle(spend=("b", 1.5, time.time() + 60), release=("c", "l1"), done=lambda t, _: totals.append(t))
        assert totals == [1.5]
        spent = await backend.admit(take, budget=("b", 1.0), lease=("c", 1, "l3", 30))
        assert spent is not None and spent.kind == "budget" and spent.value == 1.5
        # one of the ten requests was taken, by the first admit alone; the lease is free
        assert await backend.admit([Take("k:rpm", 10, 60, 9)], lease=("c", 1, "l4", 30)) is None
        rate = await backend.admit(take, lease=("c", 2, "l5", 30))
        assert rate is not None and rate.kind == "rate" and rate.wait > 0
        assert backend.table.get(b"c", time.time()) == 1  # l4's; the refused one gave its slot back

    asyncio.run(run())


def test_a_budget_period_is_the_utc_day_or_month_and_its_end() -> None:
    key = ApiKey("team", "k" * 20, budget=Budget(5.0, BudgetPeriod.MONTH))
    now = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    assert budget_key(key.name, Budget(5.0, BudgetPeriod.MONTH), now) == (
        "key:team:usd:2026-12",
        datetime(2027, 1, 1, tzinfo=UTC).timestamp(),
    )
    assert budget_key(key.name, Budget(5.0, BudgetPeriod.DAY), now + 1) == (
        "key:team:usd:2027-01-01",
        datetime(2027, 1, 2, tzinfo=UTC).timestamp(),
    )


def test_a_held_slot_is_renewed_while_its_request_runs_and_expires_without_renewal(monkeypatch) -> None:
    monkeypatch.setattr(limits_module, "LEASE_TTL", 0.3)
    monkeypatch.setattr(limits_module, "RENEW_EVERY", 0.05)
    backend = MemoryBackend(None)
    tables = types.SimpleNamespace(
        limits=types.SimpleNamespace(on_redis_error="open"),
        providers={},
        auth=types.SimpleNamespace(keys_by_digest={}),
    )
    limits = Limits(tables, backend)  # type: ignore[arg-type]
    caller = ApiKey("team", "k" * 20, max_concurrent=1)

    async def run() -> None:
        outcome = Outcome()
        await limits.admit(caller, {}, outcome)
        await asyncio.sleep(0.8)  # > LEASE_TTL: alive only because it was renewed
        assert backend.table.get(b"key:team:conc", time.time()) == 1
        with pytest.raises(RateLimited):
            await limits.admit(caller, {}, Outcome())
        limits.settle(outcome)
        assert backend.table.get(b"key:team:conc", time.time()) == 0
        assert not backend.leases
        # a slot whose holder stopped renewing (a dead worker's) is free after LEASE_TTL
        assert await backend.admit([], lease=("key:team:conc", 1, "dead", 0.3)) is None
        await asyncio.sleep(0.4)
        assert (await limits.admit(caller, {}, Outcome())).lease is not None

    asyncio.run(run())
