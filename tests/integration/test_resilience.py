"""SPEC §5 routing under failure: retries, fallbacks, Retry-After, the circuit
breaker, active health checks, and what /health/detailed and /metrics say of them.

Each target has its own fake upstream (A, B, C), so each fake's request log
says which target was tried. Failures are steered for every request of a fake
with its mode (``fake.set_mode(status=503)``) or per request with ``"fake"``.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import FAKE_KEY, Gateway, eventually
from tests.fakes.runner import FakeUpstream

pytestmark = pytest.mark.integration


CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]
APP = "gw-res-key-app-0123456789abcdef"
ADMIN = "gw-res-admin-key-0123456789abcdef"
SECRETS = (APP, ADMIN, FAKE_KEY)


# ---------------------------------------------------------------- fakes and config


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeUpstream, FakeUpstream, FakeUpstream]]:
    with FakeUpstream(api_key=FAKE_KEY) as a, FakeUpstream(api_key=FAKE_KEY) as b, \
         FakeUpstream(api_key=FAKE_KEY) as c:  # fmt: skip
        yield a, b, c


@pytest.fixture(autouse=True)
def _fresh(fakes: tuple[FakeUpstream, ...]) -> Iterator[None]:
    """Records, stats and modes cleared before and after each test."""
    for f in fakes:
        f.reset()
    yield
    for f in fakes:
        f.reset()


@pytest.fixture
def a(fakes: tuple[FakeUpstream, ...]) -> FakeUpstream:
    return fakes[0]


@pytest.fixture
def b(fakes: tuple[FakeUpstream, ...]) -> FakeUpstream:
    return fakes[1]


@pytest.fixture
def c(fakes: tuple[FakeUpstream, ...]) -> FakeUpstream:
    return fakes[2]


def provider(name: str, fake: FakeUpstream) -> str:
    return (
        f"  {name}: {{type: openai, base_url: {fake.openai_base_url}, api_key: {FAKE_KEY}, "
        "connect_timeout_s: 0.5, first_byte_timeout_s: 0.5, idle_timeout_s: 1, timeout_s: 3}\n"
    )


def config(
    a: FakeUpstream,
    b: FakeUpstream,
    c: FakeUpstream | None = None,
    *,
    models: tuple[str, ...] = ("pair",),
    weights: tuple[int, int] = (1, 1),
    retries: int = 1,
    failures: int = 1000,
    cooldown_s: float = 1,
    health_interval_s: float = 0,
    health_thresholds: str = "",
) -> str:
    """Providers pa, pb (and pc) on fakes A, B (and C), plus echo; only the named models.

    pair       pa/up-a and pb/up-b
    pair-fb    the same targets, falling back to ``backup`` (pc/up-c)
    pair-echo  the same targets, falling back to ``echo``
    """
    pair = f"[{{provider: pa, model: up-a, weight: {weights[0]}}}, {{provider: pb, model: up-b, weight: {weights[1]}}}]"
    defined = {
        "pair": f"{{targets: {pair}}}",
        "pair-fb": f"{{targets: {pair}, fallbacks: [backup]}}",
        "pair-echo": f"{{targets: {pair}, fallbacks: [echo]}}",
        "backup": "{targets: [{provider: pc, model: up-c}]}",
        "echo": "{targets: [{provider: demo, model: echo}]}",
    }
    wanted = list(models)
    if "pair-fb" in wanted and "backup" not in wanted:
        wanted.append("backup")
    if "pair-echo" in wanted and "echo" not in wanted:
        wanted.append("echo")
    text = f"""
auth:
  keys: [{{name: app, key: {APP}, models: ["*"]}}]
  admin_key: {ADMIN}
providers:
{provider("pa", a)}{provider("pb", b)}{provider("pc", c) if c is not None else ""}  demo: {{type: echo}}
models:
"""
    for name in wanted:
        text += f"  {name}: {defined[name]}\n"
    text += f"""routing:
  retries: {retries}
  circuit_breaker: {{failures: {failures}, cooldown_s: {cooldown_s}}}
  health_check: {{interval_s: {health_interval_s}{health_thresholds}}}
"""
    return text


# ---------------------------------------------------------------- helpers


def chat(gw: Gateway, model: str = "pair", fake: dict[str, Any] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"model": model, "messages": HI}
    if fake is not None:
        body["fake"] = fake
    return httpx.post(gw.url + CHAT, json=body, headers={"authorization": f"Bearer {APP}"}, timeout=15)


def answered(resp: httpx.Response, provider_name: str, content: str = "fake: hi") -> None:
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-gw-provider"] == provider_name, (resp.headers.get("x-gw-provider"), resp.text)
    assert resp.json()["choices"][0]["message"]["content"] == content


def attempts(fake: FakeUpstream) -> int:
    """Chat requests the fake received (model-list probes excluded)."""
    return sum(1 for r in fake.requests() if r["method"] == "POST" and r["path"] == CHAT)


def probes(fake: FakeUpstream) -> list[dict[str, Any]]:
    return [r for r in fake.requests() if r["method"] == "GET" and r["path"] == "/v1/models"]


def error_of(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers.get("x-request-id")
    error = resp.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    return error


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def concurrently(n: int, call: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """``n`` requests at once, each on its own connection."""
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    for r in results:
        assert isinstance(r, httpx.Response), r
    return results


def detailed(gw: Gateway) -> dict[str, Any]:
    resp = httpx.get(gw.url + "/health/detailed", headers={"authorization": f"Bearer {ADMIN}"}, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def metric(gw: Gateway, name: str, **labels: str) -> float | None:
    """The value of one series on /metrics, None when it is absent."""
    for line in httpx.get(gw.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def metric_becomes(gw: Gateway, expected: float, name: str, timeout: float = 3.0, **labels: str) -> None:
    """Workers publish metrics every 0.25 s: poll."""
    seen: list[float | None] = []

    def check() -> bool:
        seen.append(metric(gw, name, **labels))
        return seen[-1] == expected

    try:
        eventually(check, timeout, f"{name}{labels} == {expected}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last value {seen[-1] if seen else None}") from None


# ---------------------------------------------------------------- retries and fallbacks


def test_a_target_answering_503_is_skipped_and_never_tried_twice_for_a_request(gateway, a, b):
    # A weighs 3: a plain weighted pick right after A's failure would often be A again.
    gw = gateway(config(a, b, weights=(3, 1)))
    a.set_mode(status=503)
    for _ in range(8):
        before_a, before_b = attempts(a), attempts(b)
        answered(chat(gw), "pb")
        assert attempts(a) - before_a <= 1, "A was tried twice for one request"
        assert attempts(b) - before_b == 1
    assert attempts(a) >= 3, "A (weight 3 of 4) was tried, failed, and the request went on to B"
    assert all(r["body"]["model"] == "up-b" for r in b.requests() if r["path"] == CHAT)


@pytest.fixture(scope="module")
def gw_shared(fakes: tuple[FakeUpstream, ...], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway whose breaker never opens, for the tests below that leave no state behind
    (the last one, error mapping, benches both targets for 1 s with a 429)."""
    path = tmp_path_factory.mktemp("gw-res") / "config.yaml"
    path.write_text(config(*fakes, models=("pair", "pair-fb", "pair-echo")))
    gw = Gateway(path)
    yield gw
    gw.close()


def test_a_target_failing_n_times_gets_its_traffic_back(gw_shared, a, b):
    gw = gw_shared
    a.set_mode(status=503, times=2)
    answers = [chat(gw) for _ in range(12)]
    assert [r.status_code for r in answers] == [200] * 12, [r.text for r in answers if r.status_code != 200]
    by_a = sum(1 for r in answers if r.headers["x-gw-provider"] == "pa")
    assert by_a >= 2, "after its two failures A serves again"
    assert attempts(a) == 2 + by_a
    assert attempts(b) == 12 - by_a


def test_when_every_target_fails_the_fallback_model_answers(gw_shared, a, b, c):
    gw = gw_shared
    a.set_mode(status=503)
    b.set_mode(status=502)
    answered(chat(gw, "pair-fb"), "pc")
    assert (attempts(a), attempts(b), attempts(c)) == (1, 1, 1), "A, B once each (retries: 1), then backup"
    assert c.requests()[-1]["body"]["model"] == "up-c"

    answered(chat(gw, "pair-echo"), "demo", content="hi")
    assert (attempts(a), attempts(b), attempts(c)) == (2, 2, 1)


def test_an_upstream_400_is_returned_at_once_with_its_message_and_not_retried(gw_shared, a, b, c):
    gw = gw_shared
    resp = chat(gw, "pair-fb", fake={"status": 400, "message": "unsupported parameter: frobnicate"})
    error = error_of(resp, 400)
    assert "unsupported parameter: frobnicate" in error["message"]
    assert attempts(a) + attempts(b) == 1
    assert attempts(c) == 0, "a client error does not go to the fallback either"


def test_retries_0_means_one_attempt_then_the_fallback(gateway, a, b, c):
    gw = gateway(config(a, b, c, models=("pair", "pair-fb"), retries=0))
    a.set_mode(status=503)
    b.set_mode(status=503)
    error_of(chat(gw, "pair"), 502)
    assert attempts(a) + attempts(b) == 1
    answered(chat(gw, "pair-fb"), "pc")
    assert attempts(a) + attempts(b) == 2
    assert attempts(c) == 1


@pytest.mark.parametrize(
    ("directive", "status"),
    [
        ({"status": 500}, 502),
        ({"status": 503}, 502),
        ({"fault": "reset_before_headers"}, 502),
        ({"fault": "hang"}, 504),
        # last: the fake's 429 carries retry-after: 1, which benches both targets for 1 s
        ({"status": 429}, 429),
    ],
    ids=["500", "503", "reset", "hang", "429"],
)
def test_when_every_attempt_fails_the_last_failure_decides_the_status(gw_shared, a, b, directive, status):
    started = time.monotonic()
    resp = chat(gw_shared, fake=directive)
    elapsed = time.monotonic() - started
    error_of(resp, status)
    assert attempts(a) == 1 and attempts(b) == 1, "one attempt on each target (retries: 1)"
    assert elapsed < 3.0, elapsed  # a hang costs first_byte_timeout_s 0.5 per attempt
    if status == 429:
        assert re.fullmatch(r"[1-9][0-9]*", resp.headers.get("retry-after", "")), resp.headers


# ---------------------------------------------------------------- Retry-After


def test_a_429_with_retry_after_benches_the_target_for_that_long(gateway, a, b):
    gw = gateway(config(a, b))
    a.set_mode(status=429, retry_after="2", times=1)
    for _ in range(4):
        answered(chat(gw), "pb")  # the 429 is retried on B
        if attempts(a):
            break
    benched = time.monotonic()
    assert attempts(a) == 1
    while time.monotonic() < benched + 1.5:
        answered(chat(gw), "pb")
        time.sleep(0.05)
    assert attempts(a) == 1, "A got traffic inside its Retry-After window"

    sleep_until(benched + 2.3)
    answers = [chat(gw) for _ in range(4)]
    assert "pa" in [r.headers["x-gw-provider"] for r in answers]
    assert attempts(a) > 1


# ---------------------------------------------------------------- circuit breaker


def test_the_breaker_ejects_a_failing_target_then_one_probe_decides(gateway, a, b):
    cooldown = 1.0
    gw = gateway(config(a, b, failures=3, cooldown_s=cooldown))
    a.set_mode(status=503)
    for _ in range(12):
        answered(chat(gw), "pb")
        if attempts(a) >= 3:
            break
    opened = time.monotonic()
    assert attempts(a) == 3

    # Ejected: not one request reaches A during the cooldown.
    while time.monotonic() < opened + cooldown - 0.25:
        answered(chat(gw), "pb")
    assert attempts(a) == 3, "an open circuit let traffic through"

    # After the cooldown exactly one probe goes to A (slow, so the others
    # arrive while it is in flight); it fails: open again for another cooldown.
    a.set_mode(status=503, delay_s=0.3)
    sleep_until(opened + cooldown + 0.15)
    probing = time.monotonic()
    for resp in concurrently(6, lambda: chat(gw)):
        answered(resp, "pb")
    reopened_by = time.monotonic()
    assert attempts(a) == 4, "exactly one probe while half open"
    while time.monotonic() < probing + 0.3 + cooldown - 0.2:
        answered(chat(gw), "pb")
    assert attempts(a) == 4, "a failed probe re-opens the circuit for another cooldown"

    # A recovers: the next probe succeeds and closes the circuit.
    a.set_mode(delay_s=0.3)
    sleep_until(reopened_by + cooldown + 0.15)
    answers = concurrently(6, lambda: chat(gw))
    assert [r.status_code for r in answers] == [200] * 6
    assert attempts(a) == 5, "exactly one probe while half open"
    assert sum(1 for r in answers if r.headers["x-gw-provider"] == "pa") == 1
    a.clear_mode()
    served = [chat(gw).headers["x-gw-provider"] for _ in range(6)]
    assert 2 <= served.count("pa") <= 4, f"closed again, the 1:1 split is back: {served}"


def test_a_client_error_from_upstream_does_not_count_as_a_failure(gateway, a, b):
    gw = gateway(config(a, b, failures=2, cooldown_s=5))
    for _ in range(6):
        error_of(chat(gw, fake={"status": 400}), 400)
    assert attempts(a) >= 2 and attempts(b) >= 2
    before = attempts(a)
    served = [chat(gw).headers["x-gw-provider"] for _ in range(4)]
    assert "pa" in served and attempts(a) > before
    state = detailed(gw)["providers"]["pa"]
    assert state["circuit"] == "closed" and state["failures"] == 0, state


def test_with_every_target_ejected_and_no_fallback_a_503_comes_at_once(gateway, a, b):
    gw = gateway(config(a, b, failures=1, cooldown_s=5))
    a.set_mode(status=503)
    b.set_mode(status=503)
    error_of(chat(gw), 502)  # both fail once: both ejected
    # Were the dead backends still contacted, this would take 3 s per attempt.
    a.set_mode(delay_s=3)
    b.set_mode(delay_s=3)
    for _ in range(3):
        started = time.monotonic()
        resp = chat(gw)
        elapsed = time.monotonic() - started
        error = error_of(resp, 503)
        assert elapsed < 0.5, elapsed
        assert error["code"] == "no_healthy_target", error
        assert "pair" in error["message"], error
    assert (attempts(a), attempts(b)) == (1, 1)


def test_with_every_target_ejected_the_fallback_answers_without_touching_them(gateway, a, b, c):
    gw = gateway(config(a, b, c, models=("pair-fb",), failures=1, cooldown_s=5))
    a.set_mode(status=503)
    b.set_mode(status=503)
    answered(chat(gw, "pair-fb"), "pc")
    a.set_mode(delay_s=3)
    b.set_mode(delay_s=3)
    for _ in range(3):
        started = time.monotonic()
        answered(chat(gw, "pair-fb"), "pc")
        assert time.monotonic() - started < 1.0
    assert (attempts(a), attempts(b), attempts(c)) == (1, 1, 4)


# ---------------------------------------------------------------- active health checks


def test_active_health_checks_eject_and_restore_a_provider_without_client_traffic(gateway, a, b):
    gw = gateway(config(a, b, failures=2, cooldown_s=1.5, health_interval_s=0.2))
    # Probes are cheap model-list GETs, with the provider's key.
    eventually(lambda: probes(a) and probes(b), 3, "both providers probed")
    assert probes(a)[0]["headers"]["authorization"] == f"Bearer {FAKE_KEY}"
    b_probes = len(probes(b))
    time.sleep(1.0)
    assert 2 <= len(probes(b)) - b_probes <= 10, "about one probe every interval_s (0.2 s)"

    a.set_mode(status=503)
    eventually(lambda: detailed(gw)["providers"]["pa"]["up"] is False, 3, "A taken down by failed probes")
    assert attempts(a) == 0, "no client traffic was needed"
    for _ in range(4):
        answered(chat(gw), "pb")
    assert attempts(a) == 0
    assert detailed(gw)["providers"]["pb"]["up"] is True
    metric_becomes(gw, 0, "gw_provider_up", provider="pa")
    assert metric(gw, "gw_provider_up", provider="pb") == 1

    a.clear_mode()
    eventually(lambda: detailed(gw)["providers"]["pa"]["up"] is True, 4, "A back after a good probe")
    metric_becomes(gw, 1, "gw_provider_up", provider="pa")
    served = [chat(gw).headers["x-gw-provider"] for _ in range(4)]
    assert "pa" in served


def gw_events(gw: Gateway, name: str) -> list[dict[str, Any]]:
    """gw's own JSON log lines named ``name``."""
    found = []
    for line in gw.output().splitlines():
        if line.startswith("{") and f'"{name}"' in line:
            event = json.loads(line)
            if event.get("event") == name:
                found.append(event)
    return found


def probe_counts(gw: Gateway, name: str) -> list[int]:
    """The ``probes`` field of each such event, once it is logged (logs lag by up to 0.2 s)."""
    return [e["probes"] for e in eventually(lambda: gw_events(gw, name), 3, f"a {name!r} log line")]


def provider_state(gw: Gateway, name: str) -> dict[str, Any]:
    return detailed(gw)["providers"][name]


def test_failing_probes_take_a_provider_down_whatever_the_breaker_tolerates(gateway, a, b):
    # The breaker would need 1,000 failed requests; the probes decide after 2 (the default).
    gw = gateway(config(a, b, failures=1000, health_interval_s=0.3))
    eventually(lambda: len(probes(a)) >= 2, 3, "A probed")
    metric_becomes(gw, 1, "gw_provider_up", provider="pa")

    # One failed probe is not enough.
    a.set_mode(status=503, times=1)
    eventually(lambda: a.mode() == {}, 3, "one failed probe")
    seen = len(probes(a))
    while len(probes(a)) < seen + 2:
        assert provider_state(gw, "pa")["up"] is True, "down after a single failed probe"
        time.sleep(0.05)

    # Two in a row take it down: no traffic, down in /health/detailed and /metrics.
    a.set_mode(status=503)
    eventually(lambda: provider_state(gw, "pa")["up"] is False, 3, "A down after two failed probes")
    assert probe_counts(gw, "provider down: its health probes failed") == [2]
    pa = provider_state(gw, "pa")
    assert pa["circuit"] == "closed", "probes leave the request breaker alone"
    assert pa["last_error"].startswith("health probe: "), pa
    metric_becomes(gw, 0, "gw_provider_up", provider="pa")
    assert metric(gw, "gw_provider_up", provider="pb") == 1
    for _ in range(8):
        answered(chat(gw), "pb")
    assert attempts(a) == 0, "a provider down by its probes gets no traffic"

    # One good probe brings it back, and its share of the traffic with it.
    # Counted before the switch: a probe may land between the two lines.
    recovered_from = len(probes(a))
    a.clear_mode()
    eventually(lambda: provider_state(gw, "pa")["up"] is True, 3, "A back after a good probe")
    # a failed probe landing at the switch, the first good one, perhaps a second in flight
    assert 1 <= len(probes(a)) - recovered_from <= 3, "one good probe brings it back"
    assert probe_counts(gw, "provider up: its health probes pass") == [1]
    metric_becomes(gw, 1, "gw_provider_up", provider="pa")
    served = [chat(gw).headers["x-gw-provider"] for _ in range(6)]
    assert 2 <= served.count("pa") <= 4, served


def test_probe_thresholds_are_configurable(gateway, a, b):
    gw = gateway(config(a, b, health_interval_s=0.2, health_thresholds=", unhealthy_after: 3, healthy_after: 2"))
    eventually(lambda: probes(a), 3, "A probed")
    a.set_mode(status=503)
    eventually(lambda: provider_state(gw, "pa")["up"] is False, 4, "A down after three failed probes")
    a.clear_mode()
    eventually(lambda: provider_state(gw, "pa")["up"] is True, 4, "A back after two good probes")
    assert probe_counts(gw, "provider down: its health probes failed") == [3]
    assert probe_counts(gw, "provider up: its health probes pass") == [2]


def test_a_reload_that_turns_probes_off_brings_back_a_provider_they_took_down(gateway, a, b):
    gw = gateway(config(a, b, health_interval_s=0.2))
    a.set_mode(status=503)
    eventually(lambda: provider_state(gw, "pa")["up"] is False, 4, "A down by its probes")
    gw.config.write_text(config(a, b, health_interval_s=0))
    gw.process.send_signal(signal.SIGHUP)
    eventually(lambda: provider_state(gw, "pa")["up"] is True, 5, "A up again once probes are off")
    metric_becomes(gw, 1, "gw_provider_up", provider="pa")
    probed = len(probes(a))
    a.clear_mode()
    served = [chat(gw).headers["x-gw-provider"] for _ in range(6)]
    assert "pa" in served
    assert len(probes(a)) == probed, "no probes once they are off"


# ---------------------------------------------------------------- /health/detailed and /metrics


def test_detailed_health_reports_circuits_errors_and_latency(gateway, a, b):
    gw = gateway(config(a, b, failures=2, cooldown_s=5))
    assert httpx.get(gw.url + "/health/detailed").status_code == 401
    as_app = httpx.get(gw.url + "/health/detailed", headers={"authorization": f"Bearer {APP}"})
    assert as_app.status_code == 401

    body = detailed(gw)
    assert body["status"] == "ok"
    assert body["providers"]["pa"] == {
        "type": "openai", "enabled": True, "up": True, "circuit": "closed", "failures": 0,
        "error_rate": None, "latency_ms": None, "last_error": None,
    }  # fmt: skip
    assert body["providers"]["demo"]["type"] == "echo"
    pair = body["models"]["pair"]
    assert pair["fallbacks"] == []
    keys = ("provider", "model", "weight", "circuit", "failures")  # more fields are welcome
    assert [{k: t[k] for k in keys} for t in pair["targets"]] == [
        {"provider": "pa", "model": "up-a", "weight": 1, "circuit": "closed", "failures": 0},
        {"provider": "pb", "model": "up-b", "weight": 1, "circuit": "closed", "failures": 0},
    ]

    for _ in range(4):
        assert chat(gw).status_code == 200
    pa = detailed(gw)["providers"]["pa"]
    assert isinstance(pa["latency_ms"], (int, float)) and pa["latency_ms"] > 0, pa
    assert pa["error_rate"] == 0, pa
    assert pa["last_error"] is None and pa["circuit"] == "closed"

    # The upstream's error text carries secrets: last_error must not.
    a.set_mode(status=503, message=f"overloaded; key {FAKE_KEY} for {APP}")
    for _ in range(8):
        answered(chat(gw), "pb")
        if attempts(a) >= 2 + 2:
            break
    resp = httpx.get(gw.url + "/health/detailed", headers={"authorization": f"Bearer {ADMIN}"})
    for secret in SECRETS:
        assert secret not in resp.text
    body = resp.json()
    pa = body["providers"]["pa"]
    assert pa["circuit"] == "open" and pa["up"] is False, pa
    assert pa["failures"] >= 2, pa
    assert 0 < pa["error_rate"] <= 1, pa
    assert isinstance(pa["last_error"], str) and pa["last_error"], pa
    target = body["models"]["pair"]["targets"][0]
    assert target["provider"] == "pa" and target["circuit"] == "open" and target["failures"] >= 2, target
    pb = body["providers"]["pb"]
    assert pb["circuit"] == "closed" and pb["up"] is True and pb["error_rate"] == 0, pb


def test_provider_up_and_retries_metrics_follow_the_breaker(gateway, a, b):
    cooldown = 2.0
    gw = gateway(config(a, b, failures=1, cooldown_s=cooldown))
    metric_becomes(gw, 1, "gw_provider_up", provider="pa")
    metric_becomes(gw, 1, "gw_provider_up", provider="pb")
    retried = metric(gw, "gw_retries_total", model="pair") or 0

    a.set_mode(status=503)
    for _ in range(4):
        answered(chat(gw), "pb")
        if attempts(a):
            break
    opened = time.monotonic()
    assert attempts(a) == 1
    metric_becomes(gw, 0, "gw_provider_up", timeout=cooldown - 0.3, provider="pa")
    assert metric(gw, "gw_provider_up", provider="pb") == 1
    metric_becomes(gw, retried + 1, "gw_retries_total", model="pair")

    a.clear_mode()
    sleep_until(opened + cooldown + 0.15)
    served = [chat(gw).headers["x-gw-provider"] for _ in range(4)]
    assert "pa" in served
    metric_becomes(gw, 1, "gw_provider_up", provider="pa")
