"""Prometheus metrics, defined once. Label values are config names only.

With several Granian workers, ``gw serve`` sets ``PROMETHEUS_MULTIPROC_DIR``
before the workers start, and ``/metrics`` aggregates every worker's values.
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from .context import CacheStatus, Outcome, RequestInfo

# LLM latencies: 10 ms to 5 min.
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)

REQUESTS = Counter(
    "gw_requests_total", "Requests answered", ("key", "model", "provider", "endpoint", "status")
)
DURATION = Histogram(
    "gw_request_duration_seconds",
    "Time from request to the end of the answer",
    ("model", "provider", "endpoint"),
    buckets=_LATENCY_BUCKETS,
)
TTFT = Histogram(
    "gw_time_to_first_token_seconds",
    "Time to the first streamed event",
    ("model", "provider"),
    buckets=_LATENCY_BUCKETS,
)
OVERHEAD = Histogram(
    "gw_overhead_seconds", "Time spent inside gw, upstream excluded", ("endpoint",), buckets=_OVERHEAD_BUCKETS
)
TOKENS = Counter("gw_tokens_total", "Tokens reported by backends", ("key", "model", "provider", "type"))
UPSTREAM_ERRORS = Counter("gw_upstream_errors_total", "Failed upstream attempts", ("provider", "reason"))
RETRIES = Counter("gw_retries_total", "Extra attempts after a failure", ("model",))
ACTIVE = Gauge("gw_active_requests", "Requests in flight", multiprocess_mode="livesum")
COST = Counter("gw_cost_usd_total", "Cost of the tokens at models.*.price", ("key", "model", "provider"))
# 1 while the provider is enabled and up: with health checks on, not taken down by
# its probes; else not every one of its targets ejected by its breaker. With several
# workers, the lowest: 0 as soon as one worker has it down.
PROVIDER_UP = Gauge(
    "gw_provider_up",
    "Provider up: its health probes pass (when on), else not every target's circuit open",
    ("provider",),
    multiprocess_mode="livemin",
)
RATE_LIMITED = Counter("gw_rate_limited_total", "Requests refused by gw's own rate limits", ("key", "limit"))
# 1 while the shared limits store (Redis) answers; with several workers, the lowest.
LIMITS_UP = Gauge(
    "gw_limits_backend_up",
    "Whether the limits store answered the last time it was asked",
    multiprocess_mode="livemin",
)
# A key's spend in its budget's current period, as of the last charge this instance made
# (all replicas' charges included: the store's total); with several workers, the newest.
KEY_SPEND = Gauge(
    "gw_key_spend_usd",
    "USD a key spent in its budget's current period",
    ("key",),
    multiprocess_mode="mostrecent",
)
CACHE_HITS = Counter("gw_cache_hits_total", "Answers served from the cache", ("model",))
CACHE_MISSES = Counter("gw_cache_misses_total", "Cacheable requests not in the cache", ("model",))
# 1 while the response cache's store answers (memory: always); with several workers, the lowest.
CACHE_UP = Gauge(
    "gw_cache_backend_up",
    "Whether the response cache's store answered the last time it was asked",
    multiprocess_mode="livemin",
)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


class Batch:
    """A worker's per-request updates, added up in plain dicts and written every 0.25 s.

        batch = Batch()            # one per worker (``Worker.batch``)
        batch.started()            # a request came in
        batch.record(info, outcome, duration_s)
        batch.start(0.25)          # in the event loop: flush periodically

    prometheus-client costs ~14 us a request for these series (~23 us in
    multiprocess mode, where each update writes a memory-mapped file); adding
    into dicts costs ~2 us, and a flush writes each series once.
    """

    __slots__ = ("counts", "observed", "active", "_timer")

    def __init__(self) -> None:
        self.counts: dict[tuple[Counter, tuple[str, ...]], float] = {}
        # (histogram, labels) -> per-bucket counts, then the sum
        self.observed: dict[tuple[Histogram, tuple[str, ...]], list[float]] = {}
        self.active = 0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, counter: Counter, labels: tuple[str, ...], amount: float = 1.0) -> None:
        key = (counter, labels)
        self.counts[key] = self.counts.get(key, 0.0) + amount

    def observe(self, histogram: Histogram, labels: tuple[str, ...], value: float) -> None:
        key = (histogram, labels)
        acc = self.observed.get(key)
        bounds = _BOUNDS[histogram]
        if acc is None:
            acc = self.observed[key] = [0.0] * (len(bounds) + 1)
        acc[bisect_left(bounds, value)] += 1  # the first bucket whose bound >= value
        acc[-1] += value

    def started(self) -> None:
        self.active += 1

    def record(self, info: RequestInfo, outcome: Outcome, duration_s: float) -> None:
        """Count a finished request (and its failed attempts, tokens, latency, overhead)."""
        self.active -= 1
        add = self.add
        for failed_provider, reason in outcome.failures or ():
            add(UPSTREAM_ERRORS, (failed_provider, reason))
        model = info.model or ""
        cache = outcome.cache
        # a cache hit's series say provider="cache": its latency is gw's alone
        provider = outcome.provider or ("cache" if cache is CacheStatus.HIT else "")
        key = info.key_name or ""
        endpoint = info.endpoint
        add(REQUESTS, (key, model, provider, endpoint, status_class(outcome.status)))
        if outcome.limited is not None:
            add(RATE_LIMITED, (key, outcome.limited))
        if cache is CacheStatus.HIT:
            add(CACHE_HITS, (model,))
        elif cache is CacheStatus.MISS:
            add(CACHE_MISSES, (model,))
        if not provider:
            return  # refused before routing: no latency or token series for it
        self.observe(DURATION, (model, provider, endpoint), duration_s)
        ttft_s = outcome.ttft_s
        if ttft_s is not None:
            self.observe(TTFT, (model, provider), ttft_s)
        self.observe(OVERHEAD, (endpoint,), max(0.0, (ttft_s or duration_s) - outcome.upstream_s))
        if outcome.retries:
            add(RETRIES, (model,), outcome.retries)
        prompt, completion = outcome.tokens()
        if prompt:
            add(TOKENS, (key, model, provider, "prompt"), prompt)
        if completion:
            add(TOKENS, (key, model, provider, "completion"), completion)
        cost = outcome.cost_usd()
        if cost:
            add(COST, (key, model, provider), cost)

    def flush(self) -> None:
        counts, self.counts = self.counts, {}
        observed, self.observed = self.observed, {}
        for (counter, labels), amount in counts.items():
            counter.labels(*labels).inc(amount)
        for (histogram, labels), acc in observed.items():
            child = histogram.labels(*labels)
            # prometheus-client keeps per-bucket (not cumulative) values in _buckets.
            for bucket, n in zip(child._buckets, acc[:-1], strict=True):
                if n:
                    bucket.inc(n)
            child._sum.inc(acc[-1])
        ACTIVE.set(self.active)
        if _SPEND:
            for key, total in _SPEND.items():
                KEY_SPEND.labels(key).set(total)
            _SPEND.clear()

    def start(self, interval: float = 0.25) -> None:
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.flush()
            self._timer = loop.call_later(interval, tick)

        self._timer = loop.call_later(interval, tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.active = 0
        self.flush()


_BOUNDS: dict[Histogram, tuple[float, ...]] = {
    DURATION: (*_LATENCY_BUCKETS, float("inf")),
    TTFT: (*_LATENCY_BUCKETS, float("inf")),
    OVERHEAD: (*_OVERHEAD_BUCKETS, float("inf")),
}


def provider_up(provider: str, up: bool) -> None:
    """Set at once, not batched: it changes only when a circuit does."""
    PROVIDER_UP.labels(provider).set(1 if up else 0)


def forget_provider(provider: str) -> None:
    """A reload removed the provider: drop its series rather than report it down."""
    try:
        PROVIDER_UP.remove(provider)
    except KeyError:
        pass


def exposition(batch: Batch) -> tuple[bytes, str]:
    """The text format of every worker's metrics (one process's when not under `gw serve`).

    Other workers' numbers are at most one flush interval (0.25 s) old.
    """
    batch.flush()
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def active_requests(multiproc_dir: str) -> float:
    """Sum of in-flight requests over all workers (the supervisor's drain check)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
    for family in registry.collect():
        if family.name == "gw_active_requests":
            return sum(sample.value for sample in family.samples)
    return 0.0


def worker_exited(pid: int, multiproc_dir: str | None = None) -> None:
    """Forget a gone worker's live gauges (the files of its other series stay: counters add up)."""
    path = multiproc_dir or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        multiprocess.mark_process_dead(pid, path)


def limits_up(up: bool) -> None:
    """The limits store answered (or not) the last time a worker asked it."""
    LIMITS_UP.set(1 if up else 0)


# key -> its budget total after the latest charge, written with the next flush
_SPEND: dict[str, float] = {}


def key_spend(key: str, total: float) -> None:
    """A key's budget total after a charge (the store's, every replica's charges included)."""
    _SPEND[key] = total


def cache_up(up: bool) -> None:
    """The response cache's store answered (or not) the last time a worker asked it."""
    CACHE_UP.set(1 if up else 0)
