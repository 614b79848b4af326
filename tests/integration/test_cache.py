"""The response cache through a running gw: the official SDKs and raw httpx -> gw -> the
OpenAI fake, which counts what reaches it. Memory (one instance) and Redis (two instances
sharing it; Redis killed and started again)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
import redis

from tests.conftest import FAKE_KEY, Gateway, eventually
from tests.fakes.runner import FakeUpstream
from tests.redis_server import RedisServer

pytestmark = pytest.mark.integration

KEY_A = "gw-test-key-cache-a-0123456789"
KEY_B = "gw-test-key-cache-b-0123456789"
KEY_RPM2 = "gw-test-key-cache-rpm2-0123456789"
CHAT = "/v1/chat/completions"


def config(fake: FakeUpstream, cache: str = "{backend: memory}") -> str:
    return f"""
auth:
  keys:
    - {{name: a, key: {KEY_A}, models: ["*"]}}
    - {{name: b, key: {KEY_B}, models: ["*"]}}
    - {{name: rpm2, key: {KEY_RPM2}, models: ["*"], rate_limit: {{rpm: 2}}}}
providers:
  up: {{type: openai, base_url: {fake.openai_base_url}, api_key: {FAKE_KEY}}}
  capped: {{type: openai, base_url: {fake.openai_base_url}, api_key: {FAKE_KEY}, rate_limit: {{rpm: 1}}}}
models:
  gpt: {{targets: [{{provider: up, model: gpt-upstream}}], price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
  capped: {{targets: [{{provider: capped, model: gpt-capped}}]}}
routing: {{retries: 0, circuit_breaker: {{failures: 1000}}}}  # failures on purpose: keep the breaker shut
cache: {cache}
"""


@pytest.fixture(scope="module")
def gw(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    path: Path = tmp_path_factory.mktemp("gw-cache") / "config.yaml"
    path.write_text(config(fake))
    gateway = Gateway(path)
    yield gateway
    gateway.close()


def nonce() -> str:
    """Words no other request sends: the fake's requests that carry them are this test's."""
    return f"cache test {uuid.uuid4().hex}"


def upstream(fake: FakeUpstream, words: str) -> int:
    """How many requests carrying ``words`` reached the fake."""
    return sum(words in orjson.dumps(r.get("body")).decode() for r in fake.requests())


def chat(
    gw: Gateway, words: str, key: str = KEY_A, headers: dict[str, str] | None = None, **extra: Any
) -> httpx.Response:
    body = {"model": "gpt", "messages": [{"role": "user", "content": words}], **extra}
    return httpx.post(
        gw.url + CHAT, json=body, headers={"authorization": f"Bearer {key}", **(headers or {})}, timeout=10
    )


def sdk(gw: Gateway, key: str = KEY_A) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def test_a_miss_then_a_hit_that_never_reaches_the_backend(gw, fake):
    words = nonce()
    client = sdk(gw)
    first = client.chat.completions.with_raw_response.create(
        model="gpt", messages=[{"role": "user", "content": words}]
    )
    second = client.chat.completions.with_raw_response.create(
        model="gpt", messages=[{"role": "user", "content": words}]
    )
    assert first.headers["x-gw-cache"] == "miss" and first.headers["x-gw-provider"] == "up"
    assert "x-gw-cost-usd" in first.headers
    assert second.headers["x-gw-cache"] == "hit"
    assert "x-gw-provider" not in second.headers and "x-gw-cost-usd" not in second.headers
    assert second.http_response.content == first.http_response.content  # the same bytes, the same id
    assert second.parse().choices[0].message.content == f"fake: {words}"
    assert second.http_response.headers["content-type"] == "application/json"
    assert upstream(fake, words) == 1


def test_fields_that_do_not_change_the_answer_still_hit(gw, fake):
    words = nonce()
    assert chat(gw, words, user="alice").headers["x-gw-cache"] == "miss"
    assert chat(gw, words, user="bob", metadata={"x": "y"}).headers["x-gw-cache"] == "hit"
    assert upstream(fake, words) == 1


def test_cache_control_no_cache_refreshes_and_no_store_bypasses(gw, fake):
    words = nonce()
    first = chat(gw, words)
    fresh = chat(gw, words, headers={"cache-control": "no-cache"})
    assert fresh.headers["x-gw-cache"] == "miss"
    assert fresh.json()["id"] != first.json()["id"]  # asked the backend again ...
    again = chat(gw, words)
    assert again.headers["x-gw-cache"] == "hit" and again.json()["id"] == fresh.json()["id"]  # ... and stored it
    bypass = chat(gw, words, headers={"cache-control": "no-store"})
    assert bypass.headers["x-gw-cache"] == "bypass" and bypass.json()["id"] != fresh.json()["id"]
    assert chat(gw, words).json()["id"] == fresh.json()["id"]  # no-store stored nothing
    assert upstream(fake, words) == 3

    other = nonce()
    assert chat(gw, other, headers={"cache-control": "no-store"}).headers["x-gw-cache"] == "bypass"
    assert chat(gw, other).headers["x-gw-cache"] == "miss"


def stream(gw: Gateway, words: str, key: str = KEY_A) -> httpx.Response:
    body = {
        "model": "gpt",
        "messages": [{"role": "user", "content": words}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream(
        "POST", gw.url + CHAT, json=body, headers={"authorization": f"Bearer {key}"}, timeout=10
    ) as resp:
        resp.read()
    return resp


def test_a_stream_hit_replays_the_original_bytes(gw, fake):
    words = nonce()
    first = stream(gw, words)
    second = stream(gw, words)
    assert first.headers["x-gw-cache"] == "miss" and second.headers["x-gw-cache"] == "hit"
    assert second.headers["content-type"].startswith("text/event-stream")
    assert second.content == first.content
    assert first.content.endswith(b"data: [DONE]\n\n") and b'"usage":' in first.content
    assert upstream(fake, words) == 1

    # the openai SDK reads the replay like any stream
    events = list(
        sdk(gw).chat.completions.create(
            model="gpt",
            messages=[{"role": "user", "content": words}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(e.choices[0].delta.content or "" for e in events if e.choices) == f"fake: {words}"
    assert events[-1].usage is not None
    assert upstream(fake, words) == 1


def test_a_stream_and_a_whole_answer_are_two_entries(gw, fake):
    words = nonce()
    assert stream(gw, words).headers["x-gw-cache"] == "miss"
    whole = chat(gw, words, stream_options={"include_usage": True})
    assert whole.headers["x-gw-cache"] == "miss" and whole.json()["object"] == "chat.completion"
    assert chat(gw, words, stream_options={"include_usage": True}).headers["x-gw-cache"] == "hit"
    assert upstream(fake, words) == 2


def test_each_key_has_its_own_cache(gw, fake):
    words = nonce()
    assert chat(gw, words, KEY_A).headers["x-gw-cache"] == "miss"
    b = chat(gw, words, KEY_B)
    assert b.headers["x-gw-cache"] == "miss"  # not the answer a got
    assert chat(gw, words, KEY_B).headers["x-gw-cache"] == "hit"
    assert upstream(fake, words) == 2


def test_a_shared_cache_serves_every_key(gateway, fake):
    gw = gateway(config(fake, "{backend: memory, namespace: shared}"))
    words = nonce()
    first = chat(gw, words, KEY_A)
    second = chat(gw, words, KEY_B)
    assert second.headers["x-gw-cache"] == "hit" and second.content == first.content
    assert upstream(fake, words) == 1


@pytest.mark.parametrize("extra", [{"temperature": 0.7}, {"n": 2}])
def test_requests_asking_for_variety_are_not_cached(gw, fake, extra):
    words = nonce()
    answers = [chat(gw, words, **extra) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert all("x-gw-cache" not in a.headers for a in answers)
    assert upstream(fake, words) == 2


def test_a_temperature_with_a_seed_is_cached(gw, fake):
    words = nonce()
    assert chat(gw, words, temperature=0.7, seed=1).headers["x-gw-cache"] == "miss"
    assert chat(gw, words, temperature=0.7, seed=1).headers["x-gw-cache"] == "hit"
    assert upstream(fake, words) == 1


def test_a_hit_still_counts_against_the_keys_rpm(gw, fake):
    words = nonce()
    answers = [chat(gw, words, KEY_RPM2) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers.get("x-gw-cache") for a in answers[:2]] == ["miss", "hit"]
    assert "x-gw-cache" not in answers[2].headers  # refused before the cache was asked
    assert upstream(fake, words) == 1


def test_a_hit_is_served_while_the_providers_rpm_is_spent(gw, fake):
    words = nonce()
    first = chat(gw, words, model="capped")
    assert first.status_code == 200 and first.headers["x-gw-provider"] == "capped"
    refused = chat(gw, nonce(), model="capped")  # the provider's minute is spent
    assert refused.status_code == 429 and refused.headers["x-gw-cache"] == "miss"
    hit = chat(gw, words, model="capped")
    assert hit.status_code == 200 and hit.headers["x-gw-cache"] == "hit" and hit.content == first.content
    assert upstream(fake, words) == 1


def test_failed_answers_are_not_cached(gw, fake):
    words = nonce()
    failed = chat(gw, words, fake={"status": 500})
    assert failed.status_code == 502 and failed.headers["x-gw-cache"] == "miss"
    assert chat(gw, words, fake={"status": 500}).status_code == 502  # asked again: nothing was stored
    assert upstream(fake, words) == 2

    cut = stream_body(gw, {"messages": [{"role": "user", "content": words}], "fake": {"fault": "error_event"}})
    assert b'"error"' in cut.content
    again = stream_body(gw, {"messages": [{"role": "user", "content": words}], "fake": {"fault": "error_event"}})
    assert again.headers["x-gw-cache"] == "miss"  # the stream that ended in an error was not stored
    assert upstream(fake, words) == 4


def stream_body(gw: Gateway, body: dict[str, Any]) -> httpx.Response:
    with httpx.stream(
        "POST",
        gw.url + CHAT,
        json={"model": "gpt", "stream": True, **body},
        headers={"authorization": f"Bearer {KEY_A}"},
        timeout=10,
    ) as resp:
        resp.read()
    return resp


def test_messages_hit_through_the_anthropic_sdk(gw, fake):
    words = nonce()
    with anthropic.Anthropic(base_url=gw.url, api_key=KEY_A, max_retries=0) as client:
        made = [
            client.messages.with_raw_response.create(
                model="gpt", max_tokens=50, messages=[{"role": "user", "content": words}]
            )
            for _ in range(2)
        ]
        assert [m.headers["x-gw-cache"] for m in made] == ["miss", "hit"]
        assert made[1].parse().id == made[0].parse().id
        with client.messages.stream(
            model="gpt", max_tokens=50, messages=[{"role": "user", "content": words}]
        ) as events:
            text = events.get_final_text()
        with client.messages.stream(
            model="gpt", max_tokens=50, messages=[{"role": "user", "content": words}]
        ) as events:
            assert events.response.headers["x-gw-cache"] == "hit"
            assert events.get_final_text() == text == f"fake: {words}"
    assert upstream(fake, words) == 2  # one whole answer, one stream


def test_embeddings_and_responses_hit_too(gw, fake):
    words = nonce()
    client = sdk(gw)
    made = [client.embeddings.with_raw_response.create(model="gpt", input=words) for _ in range(2)]
    assert [m.headers["x-gw-cache"] for m in made] == ["miss", "hit"]
    assert made[1].parse().data[0].embedding == made[0].parse().data[0].embedding
    answers = [client.responses.with_raw_response.create(model="gpt", input=words) for _ in range(2)]
    assert [a.headers["x-gw-cache"] for a in answers] == ["miss", "hit"]
    assert answers[1].parse().id == answers[0].parse().id
    assert upstream(fake, words) == 2


def test_hits_and_misses_are_counted_by_model(gw):
    words = nonce()
    assert [chat(gw, words).headers["x-gw-cache"] for _ in range(2)] == ["miss", "hit"]

    def counted() -> str | None:
        text = httpx.get(gw.url + "/metrics", timeout=10).text
        return text if 'gw_cache_hits_total{model="gpt"}' in text else None

    text = eventually(counted, 5, "hits counted")
    assert 'gw_cache_misses_total{model="gpt"}' in text
    assert "gw_cache_backend_up 1.0" in text
    # a hit's requests and latency are labelled provider="cache"
    assert 'gw_request_duration_seconds_count{endpoint="chat",model="gpt",provider="cache"}' in text
    health = httpx.get(gw.url + "/health/detailed", timeout=10).json()["cache"]
    assert health["entries"] >= 1  # this worker's
    assert health == {"backend": "memory", "namespace": "key", "up": True, "entries": health["entries"]}


def test_no_header_when_the_cache_is_off(gateway, fake):
    gw = gateway(config(fake, "{backend: none}"))
    words = nonce()
    assert [("x-gw-cache" in chat(gw, words).headers) for _ in range(2)] == [False, False]
    assert upstream(fake, words) == 2
    assert httpx.get(gw.url + "/health/detailed", timeout=10).json()["cache"] == {"backend": None}


# -- cache.backend: redis


def redis_cache(url: str) -> str:
    return f'{{backend: redis, redis_url: "{url}"}}'


def stored_keys(url: str) -> list[bytes]:
    client = redis.Redis.from_url(url)
    try:
        return list(client.scan_iter("gw:cache:*"))
    finally:
        client.close()


def test_two_instances_share_one_redis_cache(gateway, fake, redis_server: RedisServer):
    one = gateway(config(fake, redis_cache(redis_server.url)))
    two = gateway(config(fake, redis_cache(redis_server.url)))
    words = nonce()
    first = chat(one, words)
    assert first.headers["x-gw-cache"] == "miss"
    eventually(lambda: stored_keys(redis_server.url), 3, "the entry stored")  # a store never delays an answer
    second = chat(two, words)
    assert second.headers["x-gw-cache"] == "hit" and second.content == first.content
    assert upstream(fake, words) == 1

    words = nonce()
    first = stream(two, words)
    eventually(lambda: len(stored_keys(redis_server.url)) == 2, 3, "the stream stored")
    assert stream(one, words).content == first.content
    assert upstream(fake, words) == 1


def test_redis_down_is_a_miss_shown_in_health_and_the_cache_comes_back(gateway, fake, redis_server):
    gw = gateway(config(fake, redis_cache(redis_server.url)))
    words = nonce()
    chat(gw, words)
    eventually(lambda: stored_keys(redis_server.url), 3, "the entry stored")
    assert chat(gw, words).headers["x-gw-cache"] == "hit"
    redis_server.kill()
    answers = [chat(gw, words) for _ in range(3)]
    assert [(a.status_code, a.headers["x-gw-cache"]) for a in answers] == [(200, "miss")] * 3
    assert upstream(fake, words) == 4
    health = httpx.get(gw.url + "/health/detailed", timeout=10).json()["cache"]
    assert health == {"backend": "redis", "namespace": "key", "up": False}
    eventually(lambda: "cache store unreachable" in gw.output(), 3, "the outage logged")
    assert gw.output().count("cache store unreachable") == 1
    eventually(lambda: "gw_cache_backend_up 0.0" in httpx.get(gw.url + "/metrics").text, 3, "the gauge down")

    redis_server.start()  # empty, on the same port
    eventually(lambda: chat(gw, words).headers["x-gw-cache"] == "hit", 5, "hits again")
    assert httpx.get(gw.url + "/health/detailed", timeout=10).json()["cache"]["up"] is True
    eventually(lambda: "cache store reachable again" in gw.output(), 3, "the recovery logged")
