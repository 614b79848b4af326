"""Prometheus metrics, defined once. Label values are config names only.

With several Granian workers, ``gw serve`` sets ``PROMETHEUS_MULTIPROC_DIR``
before the workers start, and ``/metrics`` aggregates every worker's values.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess

from .context import RequestContext

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


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def record(ctx: RequestContext, duration_s: float) -> None:
    model = ctx.model or ""
    provider = ctx.provider or ""
    REQUESTS.labels(ctx.key_name or "", model, provider, ctx.endpoint, status_class(ctx.status)).inc()
    if not provider:
        return  # refused before routing: no latency or token series for it
    DURATION.labels(model, provider, ctx.endpoint).observe(duration_s)
    if ctx.ttft_s is not None:
        TTFT.labels(model, provider).observe(ctx.ttft_s)
    OVERHEAD.labels(ctx.endpoint).observe(max(0.0, (ctx.ttft_s or duration_s) - ctx.upstream_s))
    usage = ctx.usage
    if usage:
        key = ctx.key_name or ""
        prompt = usage.get("prompt_tokens")
        completion = usage.get("completion_tokens")
        if isinstance(prompt, int) and prompt > 0:
            TOKENS.labels(key, model, provider, "prompt").inc(prompt)
        if isinstance(completion, int) and completion > 0:
            TOKENS.labels(key, model, provider, "completion").inc(completion)


def exposition() -> tuple[bytes, str]:
    """The text format of every worker's metrics (one process's when not under `gw serve`)."""
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


def worker_exited(pid: int) -> None:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        multiprocess.mark_process_dead(pid)
