"""gw's own rate limits through a running gw: a key's rpm and tpm (429, Retry-After,
the client's envelope), a provider's rpm (its targets skipped, 429 only when nothing
can serve), tokens corrected from a stream's usage, and one limit across four workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import FAKE_KEY, Gateway, eventually
from tests.fakes.runner import FakeUpstream

pytestmark = pytest.mark.integration

RPM3 = "gw-test-key-limits-rpm3-0123456789"
TPM = "gw-test-key-limits-tpm-0123456789"
FREE = "gw-test-key-limits-free-0123456789"
CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]


def config(fake: FakeUpstream) -> str:
    return f"""
auth:
  keys:
    - {{name: rpm3, key: {RPM3}, models: ["*"], rate_limit: {{rpm: 3}}}}
    - {{name: tpm, key: {TPM}, models: ["*"], rate_limit: {{tpm: 1200}}}}
    - {{name: free, key: {FREE}, models: ["*"]}}
providers:
  demo: {{type: echo}}
  capped: {{type: openai, base_url: {fake.openai_base_url}, api_key: {FAKE_KEY}, rate_limit: {{rpm: 2}}}}
  open: {{type: openai, base_url: {fake.openai_base_url}, api_key: {FAKE_KEY}}}
models:
  echo: {{targets: [{{provider: demo, model: echo}}]}}
  capped-only: {{targets: [{{provider: capped, model: gpt-capped}}]}}
  capped-first: {{targets: [{{provider: capped, model: gpt-capped, weight: 100}}, {{provider: open, model: gpt-open}}]}}
  open-only: {{targets: [{{provider: open, model: gpt-open}}]}}
routing: {{retries: 1}}
"""


@pytest.fixture(scope="module")
def gw(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    path: Path = tmp_path_factory.mktemp("gw-limits") / "config.yaml"
    path.write_text(config(fake))
    gateway = Gateway(path)
    yield gateway
    gateway.close()


def chat(gw: Gateway, key: str, model: str = "echo", **extra: object) -> httpx.Response:
    body = {"model": model, "messages": HI, **extra}
    return httpx.post(gw.url + CHAT, json=body, headers={"authorization": f"Bearer {key}"}, timeout=10)


def test_a_keys_rpm_admits_the_minutes_total_then_429_with_an_accurate_retry_after(gw):
    assert [chat(gw, RPM3).status_code for _ in range(3)] == [200, 200, 200]
    refused = chat(gw, RPM3)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    assert "3 requests per minute (rpm)" in error["message"] and "rpm3" in error["message"]
    # rpm 3: one request every 20 s once the bucket is empty
    assert 18 <= int(refused.headers["retry-after"]) <= 20
    assert chat(gw, FREE).status_code == 200  # other keys are not touched


def test_messages_get_their_429_in_anthropics_envelope(gw):
    headers = {"x-api-key": RPM3, "anthropic-version": "2023-06-01"}
    body = {"model": "echo", "max_tokens": 10, "messages": HI}
    for _ in range(4):
        resp = httpx.post(gw.url + "/v1/messages", json=body, headers=headers, timeout=10)
    assert resp.status_code == 429
    assert resp.json()["type"] == "error" and resp.json()["error"]["type"] == "rate_limit_error"


def test_a_keys_tpm_reserves_max_tokens_and_corrects_it_from_the_streams_usage(gw):
    # each request reserves its size / 4 + max_tokens (1,000): two would not fit in 1,200 ...
    first = chat(gw, TPM, max_tokens=1000, stream=True, stream_options={"include_usage": True})
    assert first.status_code == 200 and b"[DONE]" in first.content
    # ... but that stream used 4 tokens: the reservation was corrected when it ended
    second = eventually(lambda: (r := chat(gw, TPM, max_tokens=1000)).status_code == 200 and r, 3, "the refund")
    assert second.status_code == 200
    # a stream that used 1,100 tokens (reserved: about 30) is charged them when it ends
    used = chat(gw, TPM, "open-only", stream=True, stream_options={"include_usage": True}, fake={"chunks": 1100})
    assert used.status_code == 200 and b"[DONE]" in used.content

    def refused() -> httpx.Response | None:
        r = chat(gw, TPM, max_tokens=200)
        return r if r.status_code == 429 else None

    answer = eventually(refused, 3, "the charge")
    assert "tokens per minute (tpm)" in answer.json()["error"]["message"]


def test_a_provider_over_its_rpm_is_skipped_and_429_only_when_nothing_can_serve(gw):
    served = [chat(gw, FREE, "capped-first").headers.get("x-gw-provider") for _ in range(4)]
    assert served[:2] == ["capped", "capped"] and served[2:] == ["open", "open"]
    refused = chat(gw, FREE, "capped-only")
    assert refused.status_code == 429
    assert "over its provider's rate limit" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1


def test_refusals_are_counted_by_key_and_limit(gw):
    def counted() -> str | None:
        text = httpx.get(gw.url + "/metrics", timeout=10).text
        return text if 'gw_rate_limited_total{key="rpm3",limit="key_rpm"}' in text else None

    text = eventually(counted, 5, "the refusal counted")
    assert 'limit="provider_rpm"' in text


def test_the_memory_backend_is_one_limit_across_four_workers(gateway, fake):
    gw = gateway(
        f"""
auth:
  keys: [{{name: ten, key: {RPM3}, models: ["*"], rate_limit: {{rpm: 10}}}}]
providers:
  demo: {{type: echo}}
models:
  echo: {{targets: [{{provider: demo, model: echo}}]}}
""",
        workers=4,
    )
    statuses: list[int] = []
    lock = threading.Lock()

    def send() -> None:
        for _ in range(8):  # a new connection each time: the kernel spreads them over the workers
            status = chat(gw, RPM3).status_code
            with lock:
                statuses.append(status)

    started = time.monotonic()
    threads = [threading.Thread(target=send) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refilled = int((time.monotonic() - started) / 6)  # the bucket refills one request every 6 s
    assert 10 <= statuses.count(200) <= 10 + refilled, statuses
    assert statuses.count(200) + statuses.count(429) == 40


# -- limits.backend: redis, shared by replicas


def redis_config(url: str, rpm: int, on_error: str = "open") -> str:
    return f"""
auth:
  keys: [{{name: shared, key: {RPM3}, models: ["*"], rate_limit: {{rpm: {rpm}}}}}]
providers:
  demo: {{type: echo}}
models:
  echo: {{targets: [{{provider: demo, model: echo}}]}}
limits: {{backend: redis, redis_url: "{url}", on_redis_error: {on_error}}}
"""


def detailed(gw: Gateway) -> dict:
    return httpx.get(gw.url + "/health/detailed", timeout=10).json()["limits"]


def test_two_instances_sharing_a_redis_enforce_one_keys_rpm_together(gateway, redis_server):
    one = gateway(redis_config(redis_server.url, 6))
    two = gateway(redis_config(redis_server.url, 6))
    statuses = [chat(gw, RPM3).status_code for _ in range(5) for gw in (one, two)]
    assert statuses.count(200) == 6, statuses  # not 6 each
    assert statuses.count(429) == 4


def test_redis_down_fails_open_shows_it_and_recovers(gateway, redis_server):
    gw = gateway(redis_config(redis_server.url, 2))
    assert [chat(gw, RPM3).status_code for _ in range(3)] == [200, 200, 429]
    redis_server.kill()
    assert [chat(gw, RPM3).status_code for _ in range(3)] == [200, 200, 200]  # open: admitted
    assert detailed(gw) == {"backend": "redis", "up": False, "on_redis_error": "open", "spend": {}}
    eventually(lambda: "limits store unreachable: admitting requests" in gw.output(), 3, "the outage logged")
    redis_server.start()  # an empty Redis on the same port: the limit starts over
    assert [chat(gw, RPM3).status_code for _ in range(3)] == [200, 200, 429]
    assert detailed(gw)["up"] is True
    eventually(lambda: "limits store reachable again" in gw.output(), 3, "the recovery logged")


def test_redis_down_fails_closed_when_configured(gateway, redis_server):
    gw = gateway(redis_config(redis_server.url, 2, "closed"))
    redis_server.kill()
    resp = chat(gw, RPM3)
    assert resp.status_code == 503
    assert "rate limits cannot be checked" in resp.json()["error"]["message"]


# -- max_concurrent and budget_usd


def governed_config(fake: FakeUpstream, limits: str = "") -> str:
    """Two keys: ``conc`` (2 requests in flight), ``spender`` (a day's budget of $0.01 on a
    model priced at $1,000 per million tokens in and out: $0.001 a token), and ``other``."""
    return f"""
auth:
  keys:
    - {{name: conc, key: {RPM3}, models: ["*"], max_concurrent: 2}}
    - {{name: spender, key: {TPM}, models: ["*"], budget_usd: {{amount: 0.01, period: day}}}}
    - {{name: other, key: {FREE}, models: ["*"], budget_usd: {{amount: 5, period: month}}}}
providers:
  up: {{type: openai, base_url: {fake.openai_base_url}, api_key: {FAKE_KEY}}}
models:
  priced: {{targets: [{{provider: up, model: gpt-priced}}], price: {{input_per_mtok: 1000, output_per_mtok: 1000}}}}
{limits}"""


def slow_stream(gw: Gateway, key: str, opened: threading.Event, result: list) -> threading.Thread:
    """A stream of 8 chunks 0.25 s apart (2 s) in a thread: ``opened`` once its headers came."""

    def run() -> None:
        body = {"model": "priced", "messages": HI, "stream": True, "fake": {"chunks": 8, "chunk_delay_s": 0.25}}
        headers = {"authorization": f"Bearer {key}"}
        with httpx.stream("POST", gw.url + CHAT, json=body, headers=headers, timeout=20) as resp:
            result.append(resp.status_code)
            opened.set()
            result.append(b"".join(resp.iter_bytes()))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_max_concurrent_holds_a_slot_until_a_streams_last_byte(gateway, fake):
    gw = gateway(governed_config(fake))
    results: list[list] = [[], []]
    events = [threading.Event(), threading.Event()]
    threads = [slow_stream(gw, RPM3, events[i], results[i]) for i in range(2)]
    assert all(e.wait(10) for e in events)
    refused = chat(gw, RPM3, "priced")  # both slots are held by streams still sending
    assert refused.status_code == 429
    assert "max_concurrent" in refused.json()["error"]["message"] and refused.headers["retry-after"] == "1"
    assert chat(gw, FREE, "priced").status_code == 200  # another key is not touched
    for t in threads:
        t.join()
    assert [r[0] for r in results] == [200, 200] and all(b"[DONE]" in r[1] for r in results)
    assert chat(gw, RPM3, "priced").status_code == 200  # the slots came back with the last bytes
    text = eventually(
        lambda: (t := httpx.get(gw.url + "/metrics", timeout=10).text)
        and 'gw_rate_limited_total{key="conc",limit="key_concurrency"} 1.0' in t
        and t,
        5,
        "the refusal counted",
    )
    assert text


def test_a_spent_budget_refuses_with_its_reset_time_and_shows_in_health_and_metrics(gateway, fake):
    gw = gateway(governed_config(fake))
    first = chat(gw, TPM, "priced", fake={"chunks": 20})  # 21+ tokens at $0.001: over $0.01
    assert first.status_code == 200 and float(first.headers["x-gw-cost-usd"]) > 0.01

    def refused() -> httpx.Response | None:
        r = chat(gw, TPM, "priced")
        return r if r.status_code == 429 else None

    answer = eventually(refused, 3, "the budget charged")
    message = answer.json()["error"]["message"]
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    assert "key 'spender' has used its budget of $0.01 for today" in message
    assert f"resets at {tomorrow}T00:00:00Z" in message
    assert "other" not in message and "$5" not in message  # never another key's figures
    until_midnight = 86400 - time.time() % 86400
    assert abs(int(answer.headers["retry-after"]) - until_midnight) <= 2
    spend = detailed(gw)["spend"]
    assert spend["spender"]["spent_usd"] == pytest.approx(float(first.headers["x-gw-cost-usd"]))
    assert spend["spender"]["budget_usd"] == 0.01 and spend["spender"]["period"] == "day"
    assert spend["other"]["spent_usd"] == 0 and spend["other"]["resets_at"].endswith("-01T00:00:00Z")
    assert chat(gw, FREE, "priced").status_code == 200  # the other key's budget is its own
    text = eventually(
        lambda: (t := httpx.get(gw.url + "/metrics", timeout=10).text) and 'gw_key_spend_usd{key="spender"}' in t and t,
        5,
        "the spend gauge",
    )
    assert 'gw_rate_limited_total{key="spender",limit="key_budget"}' in text


def test_max_concurrent_and_a_budget_hold_across_two_instances_sharing_redis(gateway, fake, redis_server):
    config = governed_config(fake, f'limits: {{backend: redis, redis_url: "{redis_server.url}"}}')
    one, two = gateway(config), gateway(config)
    results: list[list] = [[], []]
    events = [threading.Event(), threading.Event()]
    threads = [slow_stream(gw, RPM3, events[i], results[i]) for i, gw in enumerate((one, two))]
    assert all(e.wait(10) for e in events)  # one slot held on each instance
    assert chat(one, RPM3, "priced").status_code == 429
    assert chat(two, RPM3, "priced").status_code == 429
    for t in threads:
        t.join()
    assert chat(two, RPM3, "priced").status_code == 200
    # a budget spent through one instance is refused by the other
    assert chat(one, TPM, "priced", fake={"chunks": 20}).status_code == 200
    answer = eventually(lambda: (r := chat(two, TPM, "priced")).status_code == 429 and r, 3, "the spend shared")
    assert "has used its budget" in answer.json()["error"]["message"]
    assert detailed(two)["spend"]["spender"]["spent_usd"] > 0.01
