"""The circuit breaker's state machine, driven with explicit clock values."""

from __future__ import annotations

from gw.breaker import Breaker, Circuit, Health


def make(threshold: int = 3, cooldown_s: float = 10.0) -> Breaker:
    health = Health()
    health.provider("p", True)
    return health.breaker("p", "m", threshold, cooldown_s)


def fail(breaker: Breaker, times: int, now: float) -> None:
    for _ in range(times):
        breaker.enter()
        breaker.failed("boom", now=now)


def test_failures_below_the_threshold_keep_it_closed_and_a_success_resets_the_count() -> None:
    b = make(threshold=3)
    fail(b, 2, now=0)
    b.succeeded(0.1)
    fail(b, 2, now=0)
    assert b.state is Circuit.CLOSED and b.ready and b.failures == 2


def test_the_threshold_opens_it_for_the_cooldown_then_exactly_one_probe_passes() -> None:
    b = make(threshold=3, cooldown_s=10)
    fail(b, 3, now=100)
    assert b.state is Circuit.OPEN and not b.ready
    assert not b.available(109.9)
    assert b.retry_in(105) == 5
    assert b.available(110)
    assert b.state is Circuit.HALF_OPEN
    b.enter()  # the probe
    assert not b.available(110.5), "a second request while the probe runs"
    b.succeeded(0.2)
    assert b.state is Circuit.CLOSED and b.available(111) and b.ready


def test_a_failed_probe_opens_it_for_another_cooldown() -> None:
    b = make(threshold=1, cooldown_s=10)
    fail(b, 1, now=0)
    assert b.available(10)
    b.enter()
    b.failed("still down", now=10)
    assert b.state is Circuit.OPEN and not b.available(19) and b.available(20)


def test_a_probe_that_ends_without_a_verdict_lets_the_next_request_probe() -> None:
    b = make(threshold=1, cooldown_s=1)
    fail(b, 1, now=0)
    assert b.available(1)
    b.enter()
    b.released()  # the client left
    assert b.state is Circuit.HALF_OPEN and b.available(1.1)


def test_an_answer_with_the_clients_error_counts_as_alive() -> None:
    b = make(threshold=2)
    fail(b, 1, now=0)
    b.answered()
    fail(b, 1, now=0)
    assert b.state is Circuit.CLOSED


def test_retry_after_blocks_the_target_without_opening_the_circuit() -> None:
    b = make(threshold=5)
    b.failed("429", retry_after=3, now=50)
    assert b.state is Circuit.CLOSED and not b.ready
    assert not b.available(52.9)
    assert b.available(53) and b.ready


def probed_provider(threshold: int = 1000, unhealthy_after: int = 2, healthy_after: int = 1) -> tuple[Health, Breaker]:
    health = Health()
    health.provider("p", True).watch(5.0, unhealthy_after, healthy_after)
    return health, health.breaker("p", "m", threshold, 10.0)


def test_failed_probes_take_a_provider_down_whatever_its_breakers_threshold() -> None:
    health, b = probed_provider(threshold=1000, unhealthy_after=2)
    provider = health.providers["p"]
    provider.probed("health probe: HTTP 503", now=0)
    assert provider.up and b.ready, "one failed probe of two"
    provider.probed("health probe: HTTP 503", now=5)
    assert not provider.up and provider.down
    assert not b.ready and not b.available(5) and not b.available(1000), "no traffic while down"
    assert b.state is Circuit.CLOSED and b.failures == 0, "the breaker keeps its own count"
    assert provider.last_error == "health probe: HTTP 503" and provider.failures == 2


def test_good_probes_bring_it_back_after_healthy_after_of_them() -> None:
    health, b = probed_provider(unhealthy_after=1, healthy_after=2)
    provider = health.providers["p"]
    provider.probed("down", now=0)
    assert not provider.up
    provider.probed(None, now=5)
    assert not provider.up and not b.available(5)
    assert b.retry_in(5) == 5.0, "one more good probe, one interval away"
    provider.probed("down", now=10)  # the streak starts again
    provider.probed(None, now=15)
    assert not provider.up
    provider.probed(None, now=20)
    assert provider.up and not provider.down and b.ready and b.available(20)
    assert provider.failures == 0 and b.retry_in(20) == 0


def test_probes_neither_open_nor_close_a_circuit() -> None:
    health, b = probed_provider(threshold=1, unhealthy_after=1)
    provider = health.providers["p"]
    fail(b, 1, now=0)
    assert b.state is Circuit.OPEN
    assert provider.up, "with probes on, up follows them, not the breakers"
    provider.probed(None, now=11)
    assert b.state is Circuit.OPEN, "after its cooldown one request decides, not a probe"
    assert b.available(11) and b.state is Circuit.HALF_OPEN
    b.enter()
    b.succeeded(0.1)
    provider.probed("down", now=12)
    assert b.state is Circuit.CLOSED and not b.ready and not provider.up


def test_a_request_ending_while_its_provider_is_down_leaves_the_target_out() -> None:
    health, b = probed_provider(threshold=1, unhealthy_after=1)
    provider = health.providers["p"]
    b.enter()  # sent just before the probe failed
    provider.probed("down", now=0)
    b.failed("boom", now=0)
    assert b.state is Circuit.OPEN and not b.available(20)
    provider.probed(None, now=5)
    assert not b.ready, "the circuit is still open"
    assert b.available(20) and b.state is Circuit.HALF_OPEN


def test_turning_probes_off_brings_back_a_provider_they_took_down() -> None:
    health, b = probed_provider(unhealthy_after=1)
    provider = health.providers["p"]
    provider.probed("down", now=0)
    assert not provider.up
    provider.watch(0.0, 2, 1)
    assert provider.up and b.ready and not provider.down
    provider.probed("down", now=1)  # a late result from the stopped checker
    assert provider.up and b.ready


def test_a_target_added_by_a_reload_while_its_provider_is_down_is_not_picked() -> None:
    health, _ = probed_provider(unhealthy_after=1)
    health.providers["p"].probed("down", now=0)
    fresh = health.carried_over({"p"})
    added = fresh.breaker("p", "other", 5, 10)
    assert not added.ready and not added.available(0)
    fresh.providers["p"].probed(None, now=5)
    assert added.ready


def test_without_probes_the_provider_is_down_only_while_every_target_is_open() -> None:
    health = Health()
    provider = health.provider("p", True)
    one = health.breaker("p", "a", 1, 10)
    two = health.breaker("p", "b", 1, 10)
    fail(one, 1, now=0)
    assert provider.up and provider.circuit is Circuit.OPEN
    fail(two, 1, now=0)
    assert not provider.up
    assert two.available(10)
    two.enter()
    two.succeeded(0.1)
    assert provider.up
    assert provider.failures == 0 and provider.last_error == "boom"
    assert provider.error_rate is not None and 0 < provider.error_rate < 1
    assert provider.latency_ms == 100.0


def test_a_reload_keeps_the_state_of_unchanged_providers_only() -> None:
    health = Health()
    health.provider("kept", True)
    health.provider("changed", True)
    kept = health.breaker("kept", "m", 1, 10)
    health.breaker("changed", "m", 1, 10)
    fail(kept, 1, now=0)
    fresh = health.carried_over({"kept"})
    fresh.provider("changed", True)
    again = fresh.breaker("kept", "m", 2, 20)
    assert again is kept and again.state is Circuit.OPEN and again.cooldown_s == 20
    assert fresh.providers["kept"].breakers == [kept]
    assert fresh.breaker("changed", "m", 1, 10).state is Circuit.CLOSED
