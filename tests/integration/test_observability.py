"""SPEC §6 against real traffic: /metrics adds up to what the clients got, with
one worker and with two; label values are config names only; the overhead
header; one log line per request, with the request id the upstream saw too.

test_secrets.py already proves that no client or provider key leaks on one
worker and that a log line has the SPEC fields; test_serve.py that two echo
workers' request counts add up. Here: the values themselves (tokens, cost,
histogram counts, time to first token) against what the responses reported,
streams included, and the admin key.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import FAKE_KEY, Gateway, eventually
from tests.fakes.runner import FakeUpstream
from tests.integration.sse import sse_data

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"
APP_KEY = "gw-obs-key-app-0123456789abcdef"
BATCH_KEY = "gw-obs-key-batch-0123456789abcdef"
ADMIN_KEY = "gw-obs-admin-key-0123456789abcdef"
WRONG_PROVIDER_KEY = "sk-obs-wrong-provider-key-0123456789"
STRANGER_KEY = "gw-obs-stranger-key-0123456789abcdef"
PRICE_IN, PRICE_OUT = 2.5, 10.0  # USD per million tokens, models.gpt.price

CONFIG_KEYS = {"app", "batch"}
CONFIG_MODELS = {"gpt", "echo", "wrong-creds"}
CONFIG_PROVIDERS = {"up", "badkey", "demo"}


def config(fake: FakeUpstream, logging: str = "{}") -> str:
    return f"""
auth:
  keys:
    - {{name: app, key: {APP_KEY}, models: ["*"]}}
    - {{name: batch, key: {BATCH_KEY}, models: ["*"]}}
  admin_key: {ADMIN_KEY}
providers:
  up: {{type: openai, base_url: {fake.openai_base_url}, api_key: {FAKE_KEY}}}
  badkey: {{type: openai, base_url: {fake.openai_base_url}, api_key: {WRONG_PROVIDER_KEY}}}
  demo: {{type: echo}}
models:
  gpt:
    targets: [{{provider: up, model: gpt-upstream}}]
    price: {{input_per_mtok: {PRICE_IN}, output_per_mtok: {PRICE_OUT}}}
  echo: {{targets: [{{provider: demo, model: echo}}]}}
  wrong-creds: {{targets: [{{provider: badkey, model: gpt-upstream}}]}}
routing:
  retries: 0
  circuit_breaker: {{failures: 1000, cooldown_s: 1}}
logging: {logging}
"""


# ---------------------------------------------------------------- talking to gw


@dataclass
class Answer:
    """What a client got: status, headers, and the usage the answer reported."""

    status: int
    headers: httpx.Headers
    text: str
    usage: dict[str, int] | None
    elapsed: float


def send(url: str, body: dict[str, Any], key: str | None = APP_KEY, headers: dict[str, Any] | None = None) -> Answer:
    """One request on a connection of its own (so that several workers share the load)."""
    sent: dict[str, Any] = dict(headers or {})
    if key is not None:
        sent["authorization"] = f"Bearer {key}"
    started = time.monotonic()
    resp = httpx.post(url + CHAT, json=body, headers=sent, timeout=20)
    elapsed = time.monotonic() - started
    usage = None
    if resp.status_code == 200:
        if resp.headers["content-type"].startswith("text/event-stream"):
            events = sse_data(resp.text)
            assert events[-1] == "[DONE]", resp.text[-300:]
            chunks = [json.loads(e) for e in events[:-1]]
            assert not any("error" in c for c in chunks), resp.text[-300:]
            usages = [c["usage"] for c in chunks if c.get("usage")]
            usage = usages[-1] if usages else None
        else:
            usage = resp.json().get("usage")
    return Answer(resp.status_code, resp.headers, resp.text, usage, elapsed)


def words(n: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": " ".join(f"word{i}" for i in range(n))}]


def chat_body(model: str, n: int = 3, stream: bool = False, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": words(n), **extra}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


# ---------------------------------------------------------------- reading /metrics and the log


Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]


def scrape(gw: Gateway) -> Samples:
    """Every sample of GET /metrics (on a fresh connection): (name, labels) -> value."""
    resp = httpx.get(gw.url + "/metrics", timeout=10, headers={"connection": "close"})
    assert resp.status_code == 200
    out: Samples = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample with exactly these labels (0 when there is none)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def poll_metrics(gw: Gateway, ready: Callable[[Samples], bool], timeout: float = 3.0) -> Samples:
    """Scrape until ``ready(samples)`` (workers publish every 0.25 s); the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(gw)
        if ready(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


def stdout_lines(gw: Gateway) -> list[str]:
    return [line for line in gw.stdout_path.read_text(errors="replace").splitlines() if line.strip()]


def request_lines(gw: Gateway) -> list[dict[str, Any]]:
    """The request lines gw printed (other lines are checked by the tests on the format)."""
    records = []
    for line in stdout_lines(gw):
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("event") == "request":
            records.append(record)
    return records


def wait_for_request_lines(gw: Gateway, ids: set[str], timeout: float = 3.0) -> dict[str, list[dict[str, Any]]]:
    """request_id -> its request lines, once every id in ``ids`` has one (logs flush every 0.2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        by_id: dict[str, list[dict[str, Any]]] = {}
        for record in request_lines(gw):
            by_id.setdefault(record["request_id"], []).append(record)
        if ids <= set(by_id) or time.monotonic() > deadline:
            return by_id
        time.sleep(0.1)


# ---------------------------------------------------------------- metrics = traffic


@dataclass
class Traffic:
    """What was sent and what came back, by kind."""

    answers: dict[str, list[Answer]]

    @classmethod
    def empty(cls) -> Traffic:
        return cls({k: [] for k in ("gpt", "gpt-stream", "echo", "echo-stream", "unknown", "bad-key")})

    def count(self, *kinds: str) -> int:
        return sum(len(self.answers[k]) for k in kinds)

    def tokens(self, kind_prefix: str, field: str) -> int:
        return sum(
            a.usage[field] for k, answers in self.answers.items() if k.startswith(kind_prefix) for a in answers
            if a.usage
        )


def one_round(gw: Gateway, traffic: Traffic) -> None:
    """40 requests at once, each on a new connection."""
    calls: list[tuple[str, Callable[[], Answer]]] = []
    for i in range(14):
        calls.append(("gpt", lambda i=i: send(gw.url, chat_body("gpt", 2 + i))))
    for i in range(10):
        calls.append(("gpt-stream", lambda i=i: send(gw.url, chat_body("gpt", 1 + i, stream=True))))
    for i in range(6):
        calls.append(("echo", lambda i=i: send(gw.url, chat_body("echo", 3 + i), key=BATCH_KEY)))
    for i in range(2):
        calls.append(("echo-stream", lambda i=i: send(gw.url, chat_body("echo", 4 + i, stream=True), key=BATCH_KEY)))
    for i in range(4):
        calls.append(("unknown", lambda i=i: send(gw.url, chat_body(f"no-such-model-{i}"))))
    for _ in range(4):
        calls.append(("bad-key", lambda: send(gw.url, chat_body("gpt"), key=STRANGER_KEY)))
    with ThreadPoolExecutor(len(calls)) as pool:
        results = list(pool.map(lambda call: (call[0], call[1]()), calls))
    expected_status = {"unknown": 404, "bad-key": 401}
    for kind, answer in results:
        assert answer.status == expected_status.get(kind, 200), (kind, answer.text)
        if answer.status == 200:
            assert answer.usage and answer.usage["prompt_tokens"] > 0 and answer.usage["completion_tokens"] > 0
        traffic.answers[kind].append(answer)


def expected_metrics(t: Traffic) -> Samples:
    def s(name: str, **labels: str) -> tuple[str, Labels]:
        return name, frozenset(labels.items())

    gpt_ok, echo_ok = t.count("gpt", "gpt-stream"), t.count("echo", "echo-stream")
    return {
        s("gw_requests_total", key="app", model="gpt", provider="up", endpoint="chat", status="2xx"): gpt_ok,
        s("gw_requests_total", key="batch", model="echo", provider="demo", endpoint="chat", status="2xx"): echo_ok,
        # refused before routing: an unknown model is "", as is the key of a wrong key
        s("gw_requests_total", key="app", model="", provider="", endpoint="chat", status="4xx"): t.count("unknown"),
        s("gw_requests_total", key="", model="", provider="", endpoint="chat", status="4xx"): t.count("bad-key"),
        s("gw_tokens_total", key="app", model="gpt", provider="up", type="prompt"): t.tokens("gpt", "prompt_tokens"),
        s("gw_tokens_total", key="app", model="gpt", provider="up", type="completion"):
            t.tokens("gpt", "completion_tokens"),
        s("gw_tokens_total", key="batch", model="echo", provider="demo", type="prompt"):
            t.tokens("echo", "prompt_tokens"),
        s("gw_tokens_total", key="batch", model="echo", provider="demo", type="completion"):
            t.tokens("echo", "completion_tokens"),
        s("gw_request_duration_seconds_count", model="gpt", provider="up", endpoint="chat"): gpt_ok,
        s("gw_request_duration_seconds_count", model="echo", provider="demo", endpoint="chat"): echo_ok,
        s("gw_time_to_first_token_seconds_count", model="gpt", provider="up"): t.count("gpt-stream"),
        s("gw_time_to_first_token_seconds_count", model="echo", provider="demo"): t.count("echo-stream"),
        s("gw_overhead_seconds_count", endpoint="chat"): gpt_ok + echo_ok,
    }


def matches(samples: Samples, expected: Samples) -> bool:
    return all(samples.get(k, 0.0) == v for k, v in expected.items())


def mismatches(samples: Samples, expected: Samples) -> list[str]:
    return [
        f"{name}{dict(labels)}: got {samples.get((name, labels), 0.0)}, sent {v}"
        for (name, labels), v in expected.items()
        if samples.get((name, labels), 0.0) != v
    ]


def workers_seen(gw: Gateway) -> set[int]:
    time.sleep(0.3)  # logs flush every 0.2 s
    return {r["worker"] for r in request_lines(gw)}


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_add_up_to_the_traffic_sent_and_the_usage_the_clients_got(fake, gateway, workers):
    gw = gateway(config(fake), workers=workers)
    traffic = Traffic.empty()
    one_round(gw, traffic)
    if workers == 2:
        # Both workers must have served some of it; the kernel may favour one for a while.
        for _ in range(4):
            if len(workers_seen(gw)) == 2:
                break
            one_round(gw, traffic)
        assert len(workers_seen(gw)) == 2, f"every request went to worker {workers_seen(gw)}"

    sent = sum(len(a) for a in traffic.answers.values())
    expected = expected_metrics(traffic)
    samples = poll_metrics(gw, lambda s: matches(s, expected))
    assert mismatches(samples, expected) == []
    assert total(samples, "gw_requests_total") == sent, "no request counted under other labels"
    assert total(samples, "gw_time_to_first_token_seconds_count") == traffic.count("gpt-stream", "echo-stream")
    deadline = time.monotonic() + 3
    while len(request_lines(gw)) < sent and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(request_lines(gw)) == sent, "one log line per request, whichever worker served it"
    if workers == 2:
        # Whichever worker answers the scrape, it reports every worker's numbers.
        for _ in range(8):
            assert mismatches(scrape(gw), expected) == []


def test_cost_is_the_reported_usage_at_the_models_price(fake, gateway):
    gw = gateway(config(fake))
    answers = [send(gw.url, chat_body("gpt", n)) for n in (1, 5, 17)]
    answers += [send(gw.url, chat_body("gpt", n, stream=True)) for n in (2, 9)]
    unpriced = send(gw.url, chat_body("echo", 4))
    assert all(a.status == 200 and a.usage for a in [*answers, unpriced])
    cost = sum(a.usage["prompt_tokens"] * PRICE_IN + a.usage["completion_tokens"] * PRICE_OUT for a in answers) / 1e6
    assert cost > 0

    labels = {"key": "app", "model": "gpt", "provider": "up"}
    samples = poll_metrics(gw, lambda s: math.isclose(value(s, "gw_cost_usd_total", **labels), cost, abs_tol=1e-9))
    assert "gw_cost_usd_total" in {name for name, _ in samples}, "gw_cost_usd_total is not exported"
    assert value(samples, "gw_cost_usd_total", **labels) == pytest.approx(cost, abs=1e-9)
    assert total(samples, "gw_cost_usd_total") == pytest.approx(cost, abs=1e-9), "a model without a price costs 0"


def test_client_chosen_strings_never_become_label_values(fake, gateway):
    gw = gateway(config(fake))
    client_strings = []
    with httpx.Client(base_url=gw.url, timeout=10, headers={"authorization": f"Bearer {APP_KEY}"}) as http:
        for _ in range(50):
            model, rid = f"client-model-{uuid.uuid4().hex}", f"client-rid-{uuid.uuid4().hex}"
            client_strings += [model, rid]
            resp = http.post(CHAT, json=chat_body(model), headers={"x-request-id": rid})
            assert resp.status_code == 404
        for _ in range(5):
            rid, path = f"client-rid-{uuid.uuid4().hex}", f"/v1/client-path-{uuid.uuid4().hex}"
            client_strings += [rid, path]
            assert http.post(CHAT, json=chat_body("echo"), headers={"x-request-id": rid}).status_code == 200
            assert http.post(path, json=chat_body("echo"), headers={"x-request-id": rid}).status_code == 404
    samples = poll_metrics(gw, lambda s: value(s, "gw_requests_total", key="app", model="", provider="",
                                               endpoint="chat", status="4xx") == 50)
    assert value(samples, "gw_requests_total", key="app", model="", provider="", endpoint="chat", status="4xx") == 50

    allowed = {"key": CONFIG_KEYS | {""}, "model": CONFIG_MODELS | {""}, "provider": CONFIG_PROVIDERS | {""}}
    odd = sorted(
        f"{name}{dict(labels)}"
        for name, labels in samples
        for label, v in labels
        if v not in allowed.get(label, {v})
    )
    assert odd == []
    text = httpx.get(gw.url + "/metrics").text
    assert [s for s in client_strings if s in text] == []


# ---------------------------------------------------------------- x-gw-overhead-ms


@pytest.fixture(scope="module")
def gw_one(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    path = tmp_path_factory.mktemp("gw-obs") / "config.yaml"
    path.write_text(config(fake))
    gw = Gateway(path)
    yield gw
    gw.close()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_the_overhead_header_excludes_the_time_spent_waiting_on_the_upstream(gw_one, stream):
    answer = send(gw_one.url, chat_body("gpt", 3, stream=stream, fake={"delay_s": 0.3}))
    assert answer.status == 200, answer.text
    assert answer.headers["x-gw-provider"] == "up"
    overhead_ms = float(answer.headers["x-gw-overhead-ms"])
    assert answer.elapsed >= 0.3
    assert 0 <= overhead_ms < 150, f"{overhead_ms} ms: the upstream's 300 ms are not gw's overhead"


def test_the_overhead_header_is_on_answers_of_the_built_in_echo_backend_too(gw_one):
    answer = send(gw_one.url, chat_body("echo", 3))
    assert answer.headers["x-gw-provider"] == "demo"
    assert 0 <= float(answer.headers["x-gw-overhead-ms"]) <= answer.elapsed * 1000


# ---------------------------------------------------------------- the request log


def test_each_request_has_one_json_log_line_with_what_happened_and_the_id_the_upstream_saw(fake, gw_one):
    run = uuid.uuid4().hex[:8]
    cases = {
        f"log-{run}-gpt": (chat_body("gpt", 4), APP_KEY),
        f"log-{run}-stream": (chat_body("gpt", 6, stream=True), APP_KEY),
        f"log-{run}-echo": (chat_body("echo", 2), BATCH_KEY),
        f"log-{run}-unknown": (chat_body("no-such-model"), APP_KEY),
        f"log-{run}-badkey": (chat_body("gpt"), STRANGER_KEY),
    }
    answers = {rid: send(gw_one.url, body, key, {"x-request-id": rid}) for rid, (body, key) in cases.items()}
    for rid, answer in answers.items():
        assert answer.headers["x-request-id"] == rid
    by_id = wait_for_request_lines(gw_one, set(cases))

    for line in stdout_lines(gw_one):
        json.loads(line)  # every line gw prints is JSON (logging.format: json)
    workers = {r["pid"] for r in map(json.loads, stdout_lines(gw_one)) if r.get("event") == "worker started"}
    expected = {
        "gpt": ("app", "gpt", "up", 200),
        "stream": ("app", "gpt", "up", 200),
        "echo": ("batch", "echo", "demo", 200),
        "unknown": ("app", None, None, 404),
        "badkey": (None, None, None, 401),
    }
    for rid, answer in answers.items():
        kind = rid.rsplit("-", 1)[1]
        assert len(by_id.get(rid, [])) == 1, f"{kind}: {by_id.get(rid)}"
        line = by_id[rid][0]
        assert (line["key"], line["model"], line["provider"], line["status"]) == expected[kind], line
        assert answer.status == line["status"]
        assert 0 <= line["duration_ms"] <= answer.elapsed * 1000, (line["duration_ms"], answer.elapsed)
        assert line["retries"] == 0 and line["cache_hit"] is False
        assert line["worker"] in workers
        if kind == "stream":
            assert isinstance(line["ttft_ms"], (int, float)) and 0 <= line["ttft_ms"] <= line["duration_ms"]
        else:
            assert line["ttft_ms"] is None
        if answer.usage:
            assert (line["prompt_tokens"], line["completion_tokens"]) == (
                answer.usage["prompt_tokens"], answer.usage["completion_tokens"]
            )
        else:
            assert (line["prompt_tokens"], line["completion_tokens"]) == (None, None)

    seen_upstream = {r["headers"].get("x-request-id") for r in fake.requests()}
    assert {f"log-{run}-gpt", f"log-{run}-stream"} <= seen_upstream, "the client's id is sent upstream"


@pytest.mark.parametrize(
    "bad_id",
    ["x" * 129, "two words", "tab\there", "caf\u00e9".encode()],
    ids=["129-chars", "space", "tab", "non-ascii"],
)
def test_an_invalid_request_id_is_replaced_by_a_new_one_in_the_answer_the_log_and_upstream(fake, gw_one, bad_id):
    answer = send(gw_one.url, chat_body("gpt"), headers={"x-request-id": bad_id})
    assert answer.status == 200
    rid = answer.headers["x-request-id"]
    sent = bad_id.decode() if isinstance(bad_id, bytes) else bad_id
    assert rid != sent and rid.isprintable() and " " not in rid and 0 < len(rid) <= 128
    assert len(wait_for_request_lines(gw_one, {rid}).get(rid, [])) == 1
    assert any(r["headers"].get("x-request-id") == rid for r in fake.requests()), "the new id went upstream"


def test_a_request_id_of_128_printable_characters_is_kept(gw_one):
    rid = "-_.:/+=~!@#$%^&*()[]{}<>?|" + "r" * 102
    assert len(rid) == 128
    answer = send(gw_one.url, chat_body("echo"), headers={"x-request-id": rid})
    assert answer.headers["x-request-id"] == rid
    assert len(wait_for_request_lines(gw_one, {rid}).get(rid, [])) == 1


def test_no_key_appears_in_the_output_of_two_workers_admin_key_included(fake, gateway):
    """test_secrets.py covers client and provider keys on one worker; here the
    admin key too, used right and wrong, and a supervisor with two workers."""
    gw = gateway(config(fake), workers=2)
    answers: list[httpx.Response] = []
    with httpx.Client(base_url=gw.url, timeout=10) as http:

        def call(method: str, path: str, key_header: dict[str, str], body: Any = None) -> httpx.Response:
            resp = http.request(method, path, json=body, headers={**key_header, "connection": "close"})
            answers.append(resp)
            return resp

        ok = chat_body("gpt")
        assert call("POST", CHAT, {"authorization": f"Bearer {STRANGER_KEY}"}, ok).status_code == 401
        assert call("POST", CHAT, {"x-api-key": STRANGER_KEY}, ok).status_code == 401
        assert call("POST", CHAT, {"authorization": f"Bearer {ADMIN_KEY}"}, ok).status_code == 401
        assert call("GET", "/health/detailed", {"authorization": f"Bearer {APP_KEY}"}).status_code == 401
        assert call("GET", "/health/detailed", {"x-api-key": STRANGER_KEY}).status_code == 401
        assert call("GET", "/health/detailed", {"authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200
        assert call("GET", "/health/detailed", {"x-api-key": ADMIN_KEY}).status_code == 200
        assert call("POST", CHAT, {"x-api-key": BATCH_KEY}, ok).status_code == 200
        assert call("POST", CHAT, {"authorization": f"Bearer {APP_KEY}"}, chat_body("wrong-creds")).status_code == 502
        assert call("POST", CHAT, {"authorization": f"Bearer {APP_KEY}"},
                    chat_body("wrong-creds", stream=True)).status_code == 502
        assert call("POST", CHAT, {"authorization": f"Bearer {APP_KEY}"},
                    chat_body("gpt", fake={"status": 401, "message": f"bad key {FAKE_KEY}"})).status_code == 502
        metrics = http.get("/metrics").text
    eventually(lambda: len(request_lines(gw)) >= 7, 3, "the request lines flushed (every 0.2 s)")
    gw.close()
    output = gw.stdout_path.read_text(errors="replace") + gw.stderr_path.read_text(errors="replace")
    assert len(request_lines(gw)) == 7, "each chat request was logged"
    keys = {"app": APP_KEY, "batch": BATCH_KEY, "admin": ADMIN_KEY, "provider": FAKE_KEY,
            "wrong provider": WRONG_PROVIDER_KEY, "stranger": STRANGER_KEY}
    where = {"gw's output": output, "/metrics": metrics}
    where.update({f"answer {i} ({r.request.url.path})": f"{r.headers}\n{r.text}" for i, r in enumerate(answers)})
    leaks = [f"the {name} key in {place}" for name, key in keys.items() for place, text in where.items() if key in text]
    assert leaks == []


def test_every_line_on_stdout_is_json_the_servers_own_included(fake, gateway):
    """What Granian, under gw, says about its workers is part of gw's log too:
    a worker that dies (here: SIGKILL) must not put a plain-text line in a JSON log."""
    gw = gateway(config(fake), workers=2)
    deadline = time.monotonic() + 5
    while len(started := [r for r in json_records(gw) if r.get("event") == "worker started"]) < 2:
        assert time.monotonic() < deadline, stdout_lines(gw)
        time.sleep(0.1)
    before = len(stdout_lines(gw))
    os.kill(started[0]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while len(stdout_lines(gw)) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    gw.close()
    not_json = []
    for line in stdout_lines(gw):
        try:
            json.loads(line)
        except ValueError:
            not_json.append(line)
    assert not_json == []


def json_records(gw: Gateway) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout_lines(gw) if line.startswith("{")]


# ---------------------------------------------------------------- bodies and formats


def marker_traffic(gw: Gateway) -> tuple[str, dict[str, str]]:
    """Requests whose prompt (and echoed answer) holds a unique marker word; rid by kind."""
    marker = f"zebra{uuid.uuid4().hex}"
    prompt = [{"role": "user", "content": f"say {marker} please"}]
    rids = {}
    for kind, body in {
        "echo": {"model": "echo", "messages": prompt},
        "echo-stream": {"model": "echo", "messages": prompt, "stream": True},
        "gpt": {"model": "gpt", "messages": prompt},
    }.items():
        answer = send(gw.url, body, headers={"x-request-id": f"bodies-{kind}-{marker}"})
        assert answer.status == 200 and marker in answer.text, "the answer echoes the marker"
        rids[kind] = f"bodies-{kind}-{marker}"
    return marker, rids


def test_prompt_and_completion_text_are_not_logged_by_default(fake, gateway):
    gw = gateway(config(fake))
    marker, rids = marker_traffic(gw)
    by_id = wait_for_request_lines(gw, set(rids.values()))
    assert all(len(by_id.get(rid, [])) == 1 for rid in rids.values())
    gw.close()
    output = gw.stdout_path.read_text(errors="replace") + gw.stderr_path.read_text(errors="replace")
    assert output.count(marker) == len(rids), "only in the request ids, never a body"


def test_with_logging_bodies_the_request_line_has_what_the_client_sent_and_got(fake, gateway):
    gw = gateway(config(fake, "{bodies: true}"))
    marker, rids = marker_traffic(gw)
    by_id = wait_for_request_lines(gw, set(rids.values()))
    for kind, rid in rids.items():
        assert len(by_id.get(rid, [])) == 1, kind
        line = by_id[rid][0]
        assert "request_body" in line and "response_body" in line, f"{kind}: {sorted(line)}"
        assert marker in json.dumps(line["request_body"]), (kind, line["request_body"])
        assert marker in json.dumps(line["response_body"]), (kind, line["response_body"])
        assert APP_KEY not in json.dumps(line)


KEY_VALUE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def test_text_log_format_gives_key_value_lines(fake, gateway):
    gw = gateway(config(fake, "{format: text}"))
    rid = f"text-{uuid.uuid4().hex}"
    assert send(gw.url, chat_body("echo", 2), headers={"x-request-id": rid}).status == 200
    deadline = time.monotonic() + 3
    while rid not in gw.stdout_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = stdout_lines(gw)
    assert lines
    records = []
    for line in lines:
        with pytest.raises(ValueError):
            json.loads(line)
        fields = {k: json.loads(v) if v.startswith('"') else v for k, v in KEY_VALUE.findall(line)}
        assert "event" in fields, line
        records.append(fields)
    mine = [r for r in records if r.get("request_id") == rid]
    assert len(mine) == 1, lines
    assert {k: mine[0].get(k) for k in ("event", "key", "model", "provider", "status")} == {
        "event": "request", "key": "app", "model": "echo", "provider": "demo", "status": "200"
    }
    assert any(r["event"] == "worker started" for r in records), "gw's own events are text too"


def test_a_whole_answer_says_its_cost_at_the_models_price(fake, gateway):
    gw = gateway(config(fake))
    headers = {"authorization": f"Bearer {APP_KEY}"}
    priced = httpx.post(gw.url + CHAT, json=chat_body("gpt", 5), headers=headers, timeout=10)
    usage = priced.json()["usage"]
    cost = (usage["prompt_tokens"] * PRICE_IN + usage["completion_tokens"] * PRICE_OUT) / 1e6
    assert float(priced.headers["x-gw-cost-usd"]) == pytest.approx(cost, abs=1e-8)
    unpriced = httpx.post(gw.url + CHAT, json=chat_body("echo", 4), headers=headers, timeout=10)
    assert "x-gw-cost-usd" not in unpriced.headers
