"""Circuit breakers: which targets a worker may send to, and what it saw of each provider.

    breaker = health.breaker("openai", "gpt-4o")
    if breaker.ready or breaker.available(time.monotonic()):
        breaker.enter()                       # a half-open circuit lets this one through
        ... succeeded(latency_s) | failed(error, retry_after) | answered() | released()

One breaker per target (provider and upstream model), per worker process.
``failures`` consecutive request failures (a retryable error: 5xx, 429,
connection, timeout, a broken stream) open the circuit for ``cooldown_s``; then
exactly one request is let through: success closes it, failure opens it again.
A ``Retry-After`` from the backend keeps the target out of picks until then,
without opening the circuit.

``ProviderHealth`` adds up what the provider's targets saw, for
``/health/detailed`` and ``gw_provider_up``. With active health checks on
(``gw.probes``) it also keeps the probes' own count, apart from the breakers:

    provider.watch(interval_s=5, unhealthy_after=2, healthy_after=1)
    provider.probed("503 from upstream", time.monotonic())   # None: a good probe

``unhealthy_after`` failed probes in a row take the provider down: none of its
targets is picked, whatever their circuits say, until ``healthy_after`` good
probes in a row bring it back. ``up`` then follows the probes alone.
"""

from __future__ import annotations

import logging
import time
from enum import StrEnum
from typing import Any

from . import logs, metrics

# Recent error rate and latency: exponentially weighted over about the last 20 attempts.
_ERROR_ALPHA = 0.1
_LATENCY_ALPHA = 0.2


class Circuit(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_SEVERITY = {Circuit.CLOSED: 0, Circuit.HALF_OPEN: 1, Circuit.OPEN: 2}


class ProviderHealth:
    """What one worker saw of a provider: recent errors, latency, its targets' circuits."""

    __slots__ = (
        "name",
        "enabled",
        "breakers",
        "failures",
        "error_rate",
        "latency_ms",
        "last_error",
        "up",
        "interval_s",
        "unhealthy_after",
        "healthy_after",
        "down",
        "probe_failures",
        "probe_passes",
        "probed_at",
    )

    def __init__(self, name: str, enabled: bool) -> None:
        self.name = name
        self.enabled = enabled
        self.breakers: list[Breaker] = []
        self.failures = 0  # consecutive, over all its targets' requests and its probes
        self.error_rate: float | None = None
        self.latency_ms: float | None = None
        self.last_error: str | None = None
        self.up = enabled
        # Active health checks: off while interval_s is 0 (``watch`` turns them on).
        self.interval_s = 0.0
        self.unhealthy_after = 2
        self.healthy_after = 1
        self.down = False  # taken down by its probes: no target of it is picked
        self.probe_failures = 0  # consecutive
        self.probe_passes = 0  # consecutive
        self.probed_at = 0.0
        metrics.provider_up(name, enabled)

    @property
    def circuit(self) -> Circuit:
        """The worst of its targets' circuits."""
        if not self.breakers:
            return Circuit.CLOSED
        return max((b.state for b in self.breakers), key=_SEVERITY.__getitem__)

    def attempted(self, ok: bool, latency_s: float | None = None) -> None:
        sample = 0.0 if ok else 1.0
        rate = self.error_rate
        self.error_rate = sample if rate is None else rate + _ERROR_ALPHA * (sample - rate)
        if latency_s is not None:
            ms = latency_s * 1000
            latency = self.latency_ms
            self.latency_ms = ms if latency is None else latency + _LATENCY_ALPHA * (ms - latency)
        self.failures = 0 if ok else self.failures + 1

    def refresh(self) -> None:
        """Re-derive ``up`` after a circuit or the probes changed: enabled, and not down by
        its probes when they are on, else not every target ejected by its breaker."""
        if not self.enabled:
            up = False
        elif self.interval_s > 0:
            up = not self.down
        else:
            up = not self.breakers or any(b.state is not Circuit.OPEN for b in self.breakers)
        if up != self.up:
            self.up = up
            metrics.provider_up(self.name, up)

    # -- active health checks

    def watch(self, interval_s: float, unhealthy_after: int, healthy_after: int) -> None:
        """Probes are on (``interval_s`` > 0) or off (0) from now on; off forgets what they saw."""
        self.interval_s = interval_s
        self.unhealthy_after = unhealthy_after
        self.healthy_after = healthy_after
        if interval_s <= 0:
            self.probe_failures = self.probe_passes = 0
            if self.down:
                self._mark(False, "health checks turned off")
        self.refresh()

    def probed(self, error: str | None, now: float) -> None:
        """An active health probe's result (``error`` None: the provider answered).

        The breakers are not touched: requests keep their own count and threshold.
        """
        if self.interval_s <= 0:
            return  # a late result after the checks were turned off
        self.probed_at = now
        if error is None:
            self.failures = 0
            self.probe_failures = 0
            self.probe_passes += 1
            if self.down and self.probe_passes >= self.healthy_after:
                self._mark(False, None)
            return
        self.failures += 1
        self.last_error = error
        self.probe_passes = 0
        self.probe_failures += 1
        if not self.down and self.probe_failures >= self.unhealthy_after:
            self._mark(True, error)

    def up_in(self, now: float) -> float:
        """Seconds until enough good probes could bring it back (0: not down)."""
        if not self.down:
            return 0.0
        return max(0.0, self.probed_at + self.interval_s * (self.healthy_after - self.probe_passes) - now)

    def _mark(self, down: bool, error: str | None) -> None:
        self.down = down
        for breaker in self.breakers:
            breaker.ready = breaker.state is Circuit.CLOSED and breaker.blocked_until == 0.0 and not down
        if down:
            logs.event(
                "provider down: its health probes failed",
                level=logging.WARNING,
                provider=self.name,
                probes=self.probe_failures,
                error=error,
            )
        elif error is None:
            logs.event("provider up: its health probes pass", provider=self.name, probes=self.probe_passes)
        else:
            logs.event("provider up: " + error, provider=self.name)
        self.refresh()


class Breaker:
    """One target's circuit in this worker. Not thread-safe: one event loop uses it."""

    __slots__ = (
        "provider",
        "model",
        "threshold",
        "cooldown_s",
        "state",
        "failures",
        "open_until",
        "blocked_until",
        "probing",
        "ready",
        "health",
    )

    def __init__(self, health: ProviderHealth, model: str, threshold: int, cooldown_s: float) -> None:
        self.health = health
        self.provider = health.name
        self.model = model
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.state = Circuit.CLOSED
        self.failures = 0
        self.open_until = 0.0
        self.blocked_until = 0.0  # a Retry-After
        self.probing = False
        # True while nothing stands in the way: the request path checks only this.
        self.ready = not health.down
        health.breakers.append(self)

    def available(self, now: float) -> bool:
        """Whether a request may be sent now (moves an open circuit past its cooldown to half-open)."""
        if self.health.down:
            return False
        if self.state is Circuit.OPEN:
            if now < self.open_until:
                return False
            self._set(Circuit.HALF_OPEN)
        if now < self.blocked_until:
            return False
        if self.state is Circuit.HALF_OPEN:
            return not self.probing
        self.blocked_until = 0.0
        self.ready = True
        return True

    def enter(self) -> None:
        """A request was sent: on a half-open circuit it is the one probe."""
        if self.state is Circuit.HALF_OPEN:
            self.probing = True

    def succeeded(self, latency_s: float | None = None) -> None:
        self.failures = 0
        self.probing = False
        self.health.attempted(True, latency_s)
        if self.state is not Circuit.CLOSED:
            self._set(Circuit.CLOSED)

    def answered(self) -> None:
        """The backend answered with the client's error (400, 404, ...): alive, no latency sample."""
        self.failures = 0
        self.probing = False
        if self.state is not Circuit.CLOSED:
            self._set(Circuit.CLOSED)

    def failed(self, error: str, retry_after: float | None = None, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.failures += 1
        self.probing = False
        health = self.health
        health.attempted(False)
        health.last_error = error
        if retry_after:
            self.blocked_until = max(self.blocked_until, now + retry_after)
            self.ready = False
        if self.state is Circuit.HALF_OPEN or (
            self.state is Circuit.CLOSED and self.failures >= self.threshold
        ):
            self.open_until = now + self.cooldown_s
            self._set(Circuit.OPEN, error)

    def released(self) -> None:
        """The attempt ended without a verdict (the client left, its input was invalid)."""
        self.probing = False

    def retry_in(self, now: float) -> float:
        """Seconds until this target may be tried again (0: now)."""
        return max(
            0.0,
            self.open_until - now if self.state is Circuit.OPEN else 0.0,
            self.blocked_until - now,
            self.health.up_in(now),
        )

    def _set(self, state: Circuit, error: str | None = None) -> None:
        previous, self.state = self.state, state
        self.ready = state is Circuit.CLOSED and self.blocked_until == 0.0 and not self.health.down
        fields: dict[str, Any] = {"provider": self.provider, "model": self.model}
        if state is Circuit.OPEN:
            fields.update(failures=self.failures, cooldown_s=self.cooldown_s, error=error)
            logs.event("circuit reopened" if previous is Circuit.HALF_OPEN else "circuit opened", **fields)
        elif state is Circuit.CLOSED:
            logs.event("circuit closed", **fields)
        else:
            logs.event("circuit half-open: one probe may pass", **fields)
        self.health.refresh()


class Health:
    """A worker's breakers and provider records; kept across reloads for unchanged providers."""

    def __init__(self) -> None:
        self.providers: dict[str, ProviderHealth] = {}
        self.breakers: dict[tuple[str, str], Breaker] = {}

    def provider(self, name: str, enabled: bool) -> ProviderHealth:
        health = self.providers.get(name)
        if health is None:
            health = self.providers[name] = ProviderHealth(name, enabled)
        return health

    def breaker(self, provider: str, model: str, threshold: int, cooldown_s: float) -> Breaker:
        key = (provider, model)
        breaker = self.breakers.get(key)
        if breaker is None:
            breaker = self.breakers[key] = Breaker(self.providers[provider], model, threshold, cooldown_s)
        else:
            breaker.threshold, breaker.cooldown_s = threshold, cooldown_s
            owner = self.providers[provider]
            if breaker not in owner.breakers:  # carried over from before a reload
                owner.breakers.append(breaker)
        return breaker

    def carried_over(self, kept: set[str]) -> Health:
        """A new registry holding the state of the providers in ``kept`` (unchanged by a reload)."""
        fresh = Health()
        for name, health in self.providers.items():
            if name in kept:
                health.breakers = []
                fresh.providers[name] = health
        for key, breaker in self.breakers.items():
            if key[0] in kept:
                fresh.breakers[key] = breaker
        return fresh
