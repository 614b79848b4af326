from __future__ import annotations

import math
import multiprocessing
import os
import signal
import struct
import time
from collections.abc import Callable, Sequence
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gw._fast.counters import MAGIC, Table

NOW = 1_000_000.0
LOCK_OFFSET = 64  # the lock word in the file's header


@pytest.fixture
def table() -> Table:
    return Table(None)


# GCRA


def test_a_full_bucket_admits_the_minute_limit_at_once_and_the_next_waits_one_interval(
    table: Table,
) -> None:
    assert [table.take(b"rpm:a", NOW, 60, 60) for _ in range(60)] == [0.0] * 60
    assert table.take(b"rpm:a", NOW, 60, 60) == pytest.approx(1.0)
    assert table.take(b"rpm:a", NOW + 1.0, 60, 60) == 0.0
    assert table.take(b"rpm:a", NOW + 1.0, 60, 60) == pytest.approx(1.0)


def test_a_refused_request_is_not_recorded(table: Table) -> None:
    for _ in range(60):
        table.take(b"rpm:a", NOW, 60, 60)
    assert table.take(b"rpm:a", NOW + 0.5, 60, 60) == pytest.approx(0.5)
    assert table.take(b"rpm:a", NOW + 0.5, 60, 60) == pytest.approx(0.5)
    assert table.take(b"rpm:a", NOW + 1.0, 60, 60) == 0.0


def test_keys_have_buckets_of_their_own(table: Table) -> None:
    for _ in range(60):
        table.take(b"rpm:a", NOW, 60, 60)
    assert table.take(b"rpm:a", NOW, 60, 60) > 0
    assert table.take(b"rpm:b", NOW, 60, 60) == 0.0


def test_a_bucket_refills_continuously_and_never_beyond_the_limit(table: Table) -> None:
    for _ in range(60):
        table.take(b"rpm:a", NOW, 60, 60)
    # 30 s refill 30 requests; an hour refills 60, not more.
    assert sum(table.take(b"rpm:a", NOW + 30, 60, 60) == 0.0 for _ in range(40)) == 30
    assert sum(table.take(b"rpm:a", NOW + 3600, 60, 60) == 0.0 for _ in range(100)) == 60


def test_tokens_per_minute_with_costs(table: Table) -> None:
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=600) == 0.0
    # 600 + 500 is 100 tokens over: 100 * 60/1000 s.
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=500) == pytest.approx(6.0)
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=400) == 0.0
    assert table.take(b"tpm:a", NOW + 6.0, 1000, 60, cost=100) == 0.0
    assert table.take(b"tpm:a", NOW + 6.0, 1000, 60, cost=1) == pytest.approx(0.06)


def test_waiting_exactly_the_retry_is_enough_and_a_little_less_is_not(table: Table) -> None:
    for _ in range(1000):
        assert table.take(b"rpm:a", NOW, 1000, 60) == 0.0
    for cost in (1, 7, 250, 1000):
        retry = table.take(b"rpm:a", NOW, 1000, 60, cost=cost)
        assert retry == pytest.approx(cost * 0.06)
        assert table.take(b"rpm:a", NOW + retry * 0.999, 1000, 60, cost=cost) > 0
    assert table.take(b"rpm:a", NOW + 0.06 * 250, 1000, 60, cost=250) == 0.0


def test_a_cost_equal_to_the_limit_fits_a_full_bucket_and_above_it_never_fits(table: Table) -> None:
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=1001) == math.inf
    assert table.take(b"tpm:a", NOW + 3600, 1000, 60, cost=5000) == math.inf
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=1000) == 0.0
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=1) > 0


def test_a_zero_cost_is_admitted_and_takes_nothing(table: Table) -> None:
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=0) == 0.0
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=1000) == 0.0
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=0) == 0.0


def test_adjust_refunds_an_overestimate(table: Table) -> None:
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=1000) == 0.0
    assert table.adjust(b"tpm:a", NOW, 1000, 60, -400) == pytest.approx(36.0)
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=400) == 0.0
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=1) > 0


def test_adjust_charges_an_underestimate_and_may_leave_a_debt(table: Table) -> None:
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=900) == 0.0
    assert table.adjust(b"tpm:a", NOW, 1000, 60, 300) == pytest.approx(72.0)
    # 200 tokens over the limit: even one token waits 12 s and 0.06 s.
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=1) == pytest.approx(12.06)
    assert table.take(b"tpm:a", NOW + 12.06, 1000, 60, cost=1) == 0.0


def test_a_refund_never_fills_a_bucket_beyond_full(table: Table) -> None:
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=100) == 0.0
    assert table.adjust(b"tpm:a", NOW, 1000, 60, -5000) == 0.0
    assert table.adjust(b"tpm:b", NOW, 1000, 60, -5000) == 0.0  # absent: already full
    for key in (b"tpm:a", b"tpm:b"):
        assert table.take(key, NOW, 1000, 60, cost=1000) == 0.0
        assert table.take(key, NOW, 1000, 60, cost=1) > 0


def test_a_charge_on_an_absent_key_starts_from_a_full_bucket(table: Table) -> None:
    assert table.adjust(b"tpm:a", NOW, 1000, 60, 250) == pytest.approx(15.0)
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=750) == 0.0
    assert table.take(b"tpm:a", NOW, 1000, 60, cost=1) > 0


@pytest.mark.parametrize(
    ("limit", "period", "cost"),
    [(0, 60, 1), (-1, 60, 1), (60, 0, 1), (60, math.nan, 1), (math.inf, 60, 1), (60, 60, -1), (60, 60, math.nan)],
)
def test_take_refuses_nonsense_arguments(table: Table, limit: float, period: float, cost: float) -> None:
    with pytest.raises(ValueError):
        table.take(b"rpm:a", NOW, limit, period, cost)


def test_adjust_refuses_nonsense_arguments(table: Table) -> None:
    with pytest.raises(ValueError):
        table.adjust(b"rpm:a", NOW, 0, 60, 1)
    with pytest.raises(ValueError):
        table.adjust(b"rpm:a", NOW, 60, 60, math.inf)


# (seconds since the previous request, cost) for a bucket of 10 per 60 s
requests = st.lists(st.tuples(st.floats(0, 20), st.integers(0, 12)), max_size=40)


def replay(admitted: Sequence[tuple[float, float]]) -> Table:
    table = Table(None, 64)
    for at, cost in admitted:
        assert table.take(b"k", at, 10, 60, cost) == 0.0
    return table


@given(requests)
def test_no_window_ever_admits_more_than_the_limit_and_what_it_refilled(steps: list[tuple[float, int]]) -> None:
    table = Table(None, 64)
    now, admitted = NOW, []
    for dt, cost in steps:
        now += dt
        if table.take(b"k", now, 10, 60, cost) == 0.0:
            admitted.append((now, cost))
    for i, (start, _) in enumerate(admitted):
        for end, _ in admitted[i:]:
            total = sum(c for t, c in admitted if start <= t <= end)
            assert total <= 10 + (end - start) * 10 / 60 + 1e-6


@given(requests)
def test_a_refused_request_is_admitted_exactly_after_its_retry(steps: list[tuple[float, int]]) -> None:
    table = Table(None, 64)
    now, admitted = NOW, []
    for dt, cost in steps:
        now += dt
        retry = table.take(b"k", now, 10, 60, cost)
        if retry == 0.0:
            admitted.append((now, cost))
        elif cost > 10:
            assert retry == math.inf
        else:
            assert replay(admitted).take(b"k", now + retry, 10, 60, cost) == 0.0
            if retry > 1e-3:
                assert replay(admitted).take(b"k", now + retry - 1e-3, 10, 60, cost) > 0


# Counters


def test_a_counter_adds_and_reads_back(table: Table) -> None:
    assert table.get(b"n", NOW) == 0.0
    assert table.add(b"n", 1, NOW, ttl=10) == 1.0
    assert table.add(b"n", 2.5, NOW, ttl=10) == 3.5
    assert table.get(b"n", NOW) == 3.5
    assert table.get(b"other", NOW) == 0.0


def test_a_counter_and_a_bucket_of_one_key_are_apart(table: Table) -> None:
    assert table.add(b"k", 5, NOW, ttl=10) == 5.0
    assert table.take(b"k", NOW, 1, 60) == 0.0
    assert table.get(b"k", NOW) == 5.0


def test_a_fixed_window_ends_ttl_after_its_first_add(table: Table) -> None:
    table.add(b"n", 1, NOW, ttl=10)
    assert table.add(b"n", 1, NOW + 9, ttl=10) == 2.0
    assert table.get(b"n", NOW + 9.9) == 2.0
    assert table.get(b"n", NOW + 10) == 0.0
    assert table.add(b"n", 1, NOW + 10, ttl=10) == 1.0  # a new window
    assert table.get(b"n", NOW + 19.9) == 1.0
    assert table.get(b"n", NOW + 20) == 0.0


def test_a_sliding_counter_lives_ttl_after_its_last_add(table: Table) -> None:
    table.add(b"n", 1, NOW, ttl=10, sliding=True)
    assert table.add(b"n", 1, NOW + 9, ttl=10, sliding=True) == 2.0
    assert table.add(b"n", -1, NOW + 18, ttl=10, sliding=True) == 1.0
    assert table.get(b"n", NOW + 27.9) == 1.0
    assert table.get(b"n", NOW + 28) == 0.0


def test_a_counter_never_goes_below_zero(table: Table) -> None:
    assert table.add(b"n", -1, NOW, ttl=10) == 0.0
    table.add(b"n", 2, NOW, ttl=10)
    assert table.add(b"n", -5, NOW, ttl=10) == 0.0
    assert table.add(b"n", 1, NOW, ttl=10) == 1.0


def test_add_refuses_nonsense_arguments(table: Table) -> None:
    for amount, ttl in ((1, 0), (1, -1), (math.nan, 10), (1, math.inf)):
        with pytest.raises(ValueError):
            table.add(b"n", amount, NOW, ttl)


# The table


def test_a_table_is_private_without_a_path() -> None:
    a, b = Table(None), Table(None)
    a.add(b"n", 1, NOW, 10)
    assert b.get(b"n", NOW) == 0.0
    assert a.path is None and a.slots == 65536


def test_every_table_on_one_file_shares_its_state(tmp_path: Path) -> None:
    path = str(tmp_path / "limits")
    a = Table(path)
    a.add(b"n", 3, NOW, 10)
    b = Table(path)
    assert b.get(b"n", NOW) == 3.0
    assert os.path.getsize(path) == 128 + 65536 * 32


def test_a_closed_table_refuses_use(table: Table) -> None:
    table.close()
    table.close()
    with pytest.raises(ValueError, match="closed"):
        table.take(b"rpm:a", NOW, 60, 60)
    with pytest.raises(ValueError, match="closed"):
        table.steals  # noqa: B018


def test_slots_must_be_a_power_of_two_in_range() -> None:
    for slots in (0, 32, 100, 1 << 27):
        with pytest.raises(ValueError, match="power of two"):
            Table(None, slots)
    assert Table(None, 64).slots == 64


def test_a_file_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "limits"
    path.write_bytes(b"hello, world" + bytes(200))
    with pytest.raises(ValueError, match="not a gw counters table"):
        Table(str(path))


def test_a_table_of_another_size_or_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "limits"
    Table(str(path), 1024)
    with pytest.raises(ValueError, match="version 1 with 1024 slots of 32 bytes, expected version 1 with 65536"):
        Table(str(path))
    with path.open("r+b") as f:
        f.seek(8)
        f.write(struct.pack("=I", 2))
    with pytest.raises(ValueError, match="version 2 with 1024 slots"):
        Table(str(path), 1024)


def test_a_cut_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "limits"
    Table(str(path), 1024)
    for size in (1000, 12):
        os.truncate(path, size)
        with pytest.raises(ValueError, match=f"{size} bytes, expected 32896"):
            Table(str(path), 1024)


def test_a_new_file_is_stamped_with_the_header(tmp_path: Path) -> None:
    path = tmp_path / "limits"
    Table(str(path), 128)
    assert path.read_bytes()[:24] == MAGIC + struct.pack("=IIQ", 1, 32, 128)


def test_stale_slots_are_reused_without_evicting() -> None:
    table = Table(None, 64)  # every key's 64 slots are the whole table
    for i in range(64):
        assert table.take(b"k%d" % i, NOW, 1, 60) == 0.0  # each full until NOW + 60
    for i in range(64):
        assert table.take(b"j%d" % i, NOW + 60, 1, 60) == 0.0
    assert table.evictions == 0
    assert all(table.take(b"j%d" % i, NOW + 60, 1, 60) > 0 for i in range(64))


def test_a_full_table_evicts_the_entry_going_stale_first() -> None:
    table = Table(None, 64)
    for i in range(64):
        # k0's bucket is full again first: at NOW + 1; k63's at NOW + 64.
        assert table.take(b"k%d" % i, NOW, 1, 100, cost=(i + 1) / 100) == 0.0
    assert table.take(b"new", NOW, 1, 100) == 0.0
    assert table.evictions == 1
    assert table.take(b"k0", NOW, 1, 100, cost=1) == 0.0  # forgotten: a full bucket
    assert table.evictions == 2  # it took k1's slot back
    assert table.take(b"new", NOW, 1, 100) > 0
    assert all(table.take(b"k%d" % i, NOW, 1, 100) > 0 for i in range(2, 64))
    assert table.add(b"n", 1, NOW, 1000) == 1.0  # never blocks, never fails


# Across processes (spawned, as Granian's workers are separate interpreters)


def _take_all(path: str, tries: int, start: Event, results: Queue[int]) -> None:
    table = Table(path)
    start.wait()
    results.put(sum(table.take(b"rpm:shared", NOW, 1000, 60) == 0.0 for _ in range(tries)))


def _add_all(path: str, adds: int, start: Event, results: Queue[int]) -> None:
    table = Table(path)
    start.wait()
    for _ in range(adds):
        table.add(b"n", 1, NOW, 10)
    results.put(adds)


def _run(target: Callable[[str, int, Event, Queue[int]], None], path: str, count: int) -> list[int]:
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(path, count, start, results)) for _ in range(4)]
    for p in procs:
        p.start()
    time.sleep(0.2)
    start.set()
    try:
        return [results.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join()


def test_four_processes_on_one_bucket_admit_exactly_the_limit(tmp_path: Path) -> None:
    path = str(tmp_path / "limits")
    Table(path)
    admitted = _run(_take_all, path, 600)
    assert sum(admitted) == 1000
    assert Table(path).take(b"rpm:shared", NOW, 1000, 60) == pytest.approx(0.06)


def test_four_processes_adding_to_one_counter_lose_no_update(tmp_path: Path) -> None:
    path = str(tmp_path / "limits")
    Table(path)
    _run(_add_all, path, 20_000)
    assert Table(path).get(b"n", NOW) == 80_000.0


def _add_forever(path: str) -> None:
    table = Table(path)
    while True:
        table.add(b"n", 1, NOW, 10)


def test_a_process_killed_while_others_run_does_not_wedge_the_table(tmp_path: Path) -> None:
    path = str(tmp_path / "limits")
    table = Table(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_add_forever, args=(path,)) for _ in range(3)]
    for p in procs:
        p.start()
    try:
        deadline = time.monotonic() + 30
        while table.get(b"n", NOW) < 50_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        for p in procs:
            os.kill(p.pid, signal.SIGKILL)  # type: ignore[arg-type]
            p.join()
            before = time.monotonic()
            table.add(b"m", 1, NOW, 10)
            assert time.monotonic() - before < 1.0
        assert table.get(b"n", NOW) >= 50_000
    finally:
        for p in procs:
            p.kill()
            p.join()


def _lock_word(path: str, word: int) -> None:
    with open(path, "r+b") as f:
        f.seek(LOCK_OFFSET)
        f.write(struct.pack("=Q", word))


def test_a_lock_left_by_a_dead_process_is_stolen_within_milliseconds(tmp_path: Path) -> None:
    path = str(tmp_path / "limits")
    table = Table(path)
    ctx = multiprocessing.get_context("spawn")
    dead = ctx.Process(target=os.getpid)
    dead.start()
    dead.join()
    assert dead.pid is not None
    _lock_word(path, dead.pid << 32 | 7)  # as if it was killed holding the lock
    before = time.monotonic()
    assert table.take(b"rpm:a", NOW, 60, 60) == 0.0
    assert time.monotonic() - before < 0.05
    assert table.steals == 1
    assert table.take(b"rpm:a", NOW, 60, 60) == 0.0  # and released after
    assert table.steals == 1


def test_a_lock_held_too_long_by_a_live_process_is_stolen_after_100_ms(tmp_path: Path) -> None:
    path = str(tmp_path / "limits")
    table = Table(path)
    _lock_word(path, os.getpid() << 32 | 7)  # alive, but not releasing it
    before = time.monotonic()
    assert table.add(b"n", 1, NOW, 10) == 1.0
    assert 0.1 <= time.monotonic() - before < 1.0
    assert table.steals == 1
