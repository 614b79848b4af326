"""The batched metrics add up to what prometheus-client would have recorded itself."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from gw import metrics
from gw.context import Endpoint, Outcome, Protocol, RequestInfo

BATCH = metrics.Batch()


def _samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition(BATCH)[0].decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _ctx(model: str, duration_usage: dict[str, int] | None, status: int = 200) -> tuple[RequestInfo, Outcome]:
    info = RequestInfo("r", Endpoint.CHAT, Protocol.OPENAI, "POST", "/v1/chat/completions", 0.0, "app", model)
    outcome = Outcome()
    outcome.provider = "up"
    outcome.status = status
    outcome.usage = duration_usage
    return info, outcome


def test_batched_counts_tokens_and_histogram_buckets_match_the_requests() -> None:
    before = _samples()
    for duration in (0.005, 0.02, 0.02, 7.0):
        BATCH.started()
        BATCH.record(*_ctx("m-batch", {"prompt_tokens": 3, "completion_tokens": 2}), duration)
    BATCH.started()
    BATCH.record(*_ctx("m-batch", None, status=502), 0.5)
    after = _samples()

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    common = {"key": "app", "model": "m-batch", "provider": "up", "endpoint": "chat"}
    assert delta("gw_requests_total", status="2xx", **common) == 4
    assert delta("gw_requests_total", status="5xx", **common) == 1
    assert delta("gw_tokens_total", key="app", model="m-batch", provider="up", type="prompt") == 12
    assert delta("gw_tokens_total", key="app", model="m-batch", provider="up", type="completion") == 8
    hist = {"model": "m-batch", "provider": "up", "endpoint": "chat"}
    assert delta("gw_request_duration_seconds_bucket", le="0.01", **hist) == 1
    assert delta("gw_request_duration_seconds_bucket", le="0.025", **hist) == 3
    assert delta("gw_request_duration_seconds_bucket", le="5.0", **hist) == 4
    assert delta("gw_request_duration_seconds_bucket", le="10.0", **hist) == 5
    assert delta("gw_request_duration_seconds_count", **hist) == 5
    assert abs(delta("gw_request_duration_seconds_sum", **hist) - 7.545) < 1e-9
    assert after[("gw_active_requests", ())] == before.get(("gw_active_requests", ()), 0.0)
