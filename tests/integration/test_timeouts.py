"""Each provider timeout of SPEC §3, on its own: which one fires, when, and what it says.

One gateway, ``retries: 0``, with a provider per timeout under test: that
timeout is short and distinct, the others long, so the time a request takes
shows which deadline ended it. Slow backends are the fake steered per request
(``hang``, ``delay_s``, ``stall_mid_stream``, ``chunk_delay_s``) and, for the
connect timeout, a listening socket that never completes a TCP handshake.

test_errors.py already proves that a body stalling after the headers is cut at
``timeout_s`` and that a hang is retried; test_stream_faults.py that a hang on
a stream is an HTTP error and that a stall mid-stream ends in an error event.
These tests add the timing of each deadline and the name gw gives it.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import FAKE_KEY, Gateway
from tests.fakes.runner import FakeUpstream

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]
# A deadline of T seconds must end the request between 0.8 T and T + SLACK_S:
# the machine running the tests is shared and loaded.
SLACK_S = 2.5
SETTINGS = ("connect_timeout_s", "first_byte_timeout_s", "idle_timeout_s", "timeout_s")

CONNECT_S = 0.5
FIRST_BYTE_S = 0.7
IDLE_S = 0.8
TOTAL_S = 0.9


def handshake_completes(port: int, within_s: float) -> bool:
    with socket.socket() as probe:
        probe.settimeout(within_s)
        try:
            probe.connect(("127.0.0.1", port))
        except TimeoutError:
            return False
        return True


@pytest.fixture(scope="module")
def blackhole() -> Iterator[int]:
    """A port where TCP connects hang: a listener with backlog 0 that never
    accepts, whose one accept-queue place is taken, so Linux drops later SYNs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=2):  # fills the accept queue
            assert not handshake_completes(port, 0.5), (
                "a backlog-0 listener with a full accept queue should drop SYNs: "
                "the connect-timeout technique does not work on this machine"
            )
            yield port


def config(fake: FakeUpstream, blackhole: int) -> str:
    fast = f"type: openai, base_url: {fake.openai_base_url}, api_key: {FAKE_KEY}"
    return f"""
providers:
  # Each provider has one short timeout; the others are long.
  blackhole: {{type: openai, base_url: "http://127.0.0.1:{blackhole}/v1",
               connect_timeout_s: {CONNECT_S}, first_byte_timeout_s: 4, idle_timeout_s: 4, timeout_s: 6}}
  first-byte: {{{fast}, connect_timeout_s: 5, first_byte_timeout_s: {FIRST_BYTE_S}, idle_timeout_s: 4, timeout_s: 6}}
  # the same first-byte timeout, but above the idle one
  first-byte-over-idle: {{{fast}, first_byte_timeout_s: {FIRST_BYTE_S}, idle_timeout_s: 0.4, timeout_s: 6}}
  idle: {{{fast}, first_byte_timeout_s: 4, idle_timeout_s: {IDLE_S}, timeout_s: 1}}
  whole: {{{fast}, first_byte_timeout_s: 4, idle_timeout_s: 6, timeout_s: {TOTAL_S}}}
  whole-same-reads: {{{fast}, first_byte_timeout_s: 4, idle_timeout_s: 4, timeout_s: {TOTAL_S}}}
  demo: {{type: echo}}
models:
  blackhole: {{targets: [{{provider: blackhole, model: m}}]}}
  first-byte: {{targets: [{{provider: first-byte, model: m}}]}}
  first-byte-over-idle: {{targets: [{{provider: first-byte-over-idle, model: m}}]}}
  idle: {{targets: [{{provider: idle, model: m}}]}}
  whole: {{targets: [{{provider: whole, model: m}}]}}
  whole-same-reads: {{targets: [{{provider: whole-same-reads, model: m}}]}}
  echo: {{targets: [{{provider: demo, model: echo}}]}}
routing:
  retries: 0
  # these tests fail the same targets on purpose: keep their breakers shut
  circuit_breaker: {{failures: 1000, cooldown_s: 1}}
"""


@pytest.fixture(scope="module")
def gw(fake: FakeUpstream, blackhole: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    path = tmp_path_factory.mktemp("gw-timeouts") / "config.yaml"
    path.write_text(config(fake, blackhole))
    gateway = Gateway(path)
    yield gateway
    gateway.close()


def post(
    gw: Gateway, model: str, fake: dict[str, Any] | None = None, stream: bool = False
) -> tuple[httpx.Response, float]:
    body: dict[str, Any] = {"model": model, "messages": HI, "stream": stream}
    if fake is not None:
        body["fake"] = fake
    started = time.monotonic()
    resp = httpx.post(gw.url + CHAT, json=body, timeout=30)
    return resp, time.monotonic() - started


def assert_took(elapsed: float, limit_s: float) -> None:
    assert 0.8 * limit_s <= elapsed < limit_s + SLACK_S, f"{elapsed:.2f}s for a {limit_s}s timeout"


def assert_names(message: str, setting: str) -> None:
    """The message names the setting whose deadline fired, and no other."""
    named = [s for s in SETTINGS if re.search(rf"\b{s}\b", message)]
    assert named == [setting], f"names {named}, expected [{setting!r}]: {message}"


def timeout_error(resp: httpx.Response) -> str:
    """The message of a 504 in the OpenAI envelope (not a stream)."""
    assert resp.status_code == 504, resp.text
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    error = resp.json()["error"]
    assert error["type"]
    return str(error["message"])


# ---------------------------------------------------------------- connect_timeout_s


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_backend_that_never_completes_the_handshake_is_a_504_after_connect_timeout_s(gw, stream):
    resp, elapsed = post(gw, "blackhole", stream=stream)
    message = timeout_error(resp)
    assert_took(elapsed, CONNECT_S)
    assert elapsed < 3.5, "not the first-byte (4 s) or whole-request (6 s) deadline"
    assert "blackhole" in message
    assert_names(message, "connect_timeout_s")


# ---------------------------------------------------------------- first_byte_timeout_s


@pytest.mark.parametrize("model", ["first-byte", "first-byte-over-idle"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_no_response_headers_is_a_504_after_first_byte_timeout_s(gw, model, stream):
    """A stream too: nothing was sent yet, so the client gets an HTTP 504, not a stream."""
    resp, elapsed = post(gw, model, {"fault": "hang"}, stream=stream)
    message = timeout_error(resp)
    assert resp.headers.get("x-request-id")
    assert_took(elapsed, FIRST_BYTE_S)
    assert_names(message, "first_byte_timeout_s")


def test_headers_later_than_first_byte_timeout_s_are_too_late_even_if_they_come(gw):
    resp, elapsed = post(gw, "first-byte", {"delay_s": 2.0})
    assert_names(timeout_error(resp), "first_byte_timeout_s")
    assert_took(elapsed, FIRST_BYTE_S)
    assert elapsed < 2.0, "gw did not wait for the late headers"


# ---------------------------------------------------------------- idle_timeout_s


def read_stream(gw: Gateway, model: str, fake: dict[str, Any]) -> tuple[list[tuple[float, str]], float]:
    """Each SSE data line with the time it arrived, and the time the stream ended."""
    body = {"model": model, "messages": HI, "stream": True, "fake": fake}
    events: list[tuple[float, str]] = []
    started = time.monotonic()
    with httpx.stream("POST", gw.url + CHAT, json=body, timeout=30) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("data:"):
                events.append((time.monotonic() - started, line[5:].strip()))
    return events, time.monotonic() - started


def content_of(payloads: list[str]) -> str:
    chunks = [json.loads(p) for p in payloads]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


def test_a_stream_stalling_mid_way_ends_with_one_error_event_idle_timeout_s_after_the_last_chunk(gw):
    stall = {"chunks": 6, "chunk_delay_s": 0.1, "fault": "stall_mid_stream", "after": 3}
    events, ended = read_stream(gw, "idle", stall)
    payloads = [data for _, data in events]
    assert payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1, payloads
    errors = [p for p in payloads[:-1] if "error" in json.loads(p)]
    assert errors == [payloads[-2]], "exactly one error event, just before [DONE]"
    chunks = payloads[:-2]
    assert content_of(chunks) == "w0 w1 w2 ", "the content sent before the stall reached the client"
    assert all(ch["finish_reason"] is None for c in map(json.loads, chunks) for ch in c["choices"])
    last_content_at = events[-3][0]
    assert_took(ended - last_content_at, IDLE_S)
    assert_names(json.loads(errors[0])["error"]["message"], "idle_timeout_s")


def test_timeout_s_does_not_cut_a_stream_whose_chunks_keep_coming(gw):
    """SPEC §3: timeout_s bounds a whole non-streaming request; a stream is
    bounded between chunks by idle_timeout_s (gw/upstream.py: streams go through
    aiohttp with no total timeout)."""
    events, ended = read_stream(gw, "idle", {"chunks": 10, "chunk_delay_s": 0.2})  # gaps 0.2 s < idle 0.8 s
    payloads = [data for _, data in events]
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert not any("error" in c for c in chunks), payloads
    assert content_of(payloads[:-1]) == " ".join(f"w{i}" for i in range(10))
    assert [ch["finish_reason"] for c in chunks for ch in c["choices"] if ch["finish_reason"]] == ["stop"]
    assert ended > 1.0 + 0.3, f"the stream ran {ended:.2f}s: longer than the provider's timeout_s of 1 s"


# ---------------------------------------------------------------- timeout_s


@pytest.mark.parametrize("model", ["whole", "whole-same-reads"])
def test_timeout_s_bounds_a_whole_request_still_waiting_for_its_headers(gw, model):
    """The headers would come after 2 s, within first_byte_timeout_s (4 s): only
    timeout_s (0.9 s) can end it, whatever idle_timeout_s is."""
    resp, elapsed = post(gw, model, {"delay_s": 2.0})
    message = timeout_error(resp)
    assert_took(elapsed, TOTAL_S)
    assert elapsed < 2.0, "gw did not wait for the headers"
    assert_names(message, "timeout_s")


# ---------------------------------------------------------------- several at once


def test_hanging_backends_cost_each_client_at_most_its_timeout_while_other_requests_are_served(gw):
    stop = threading.Event()

    def stalled_stream() -> tuple[int, float, str]:
        events, ended = read_stream(gw, "idle", {"fault": "stall_mid_stream", "after": 1})
        return 200, ended, events[-2][1]

    def whole(model: str, fake: dict[str, Any] | None, stream: bool = False) -> Callable[[], tuple[int, float, str]]:
        def run() -> tuple[int, float, str]:
            resp, elapsed = post(gw, model, fake, stream)
            return resp.status_code, elapsed, resp.text

        return run

    # (what, call, its deadline, the status the client gets)
    cases = [
        ("connect", whole("blackhole", None), CONNECT_S, 504),
        ("connect, stream", whole("blackhole", None, True), CONNECT_S, 504),
        ("first byte", whole("first-byte", {"fault": "hang"}), FIRST_BYTE_S, 504),
        ("first byte, stream", whole("first-byte", {"fault": "hang"}, True), FIRST_BYTE_S, 504),
        ("idle", stalled_stream, IDLE_S, 200),
        ("whole request", whole("whole", {"delay_s": 3.0}), TOTAL_S, 504),
    ] * 2
    echo_times: list[float] = []
    echo_statuses: list[int] = []
    started = time.monotonic()
    with ThreadPoolExecutor(len(cases)) as pool:
        futures = [pool.submit(call) for _, call, _, _ in cases]

        def echo_meanwhile() -> None:
            with httpx.Client(base_url=gw.url, timeout=10) as client:
                while not stop.is_set():
                    t = time.monotonic()
                    resp = client.post(CHAT, json={"model": "echo", "messages": HI}, headers={"connection": "close"})
                    echo_times.append(time.monotonic() - t)
                    echo_statuses.append(resp.status_code)

        echo = threading.Thread(target=echo_meanwhile)
        echo.start()
        try:
            results = [f.result(timeout=30) for f in futures]
        finally:
            stop.set()
            echo.join(timeout=10)
    wall = time.monotonic() - started

    for (what, _, limit, status), (got, elapsed, text) in zip(cases, results, strict=True):
        assert got == status, (what, text)
        if what == "idle":
            assert '"error"' in text, text
        assert elapsed < limit + SLACK_S, f"{what}: {elapsed:.2f}s for a {limit}s timeout"
    assert wall < max(limit for _, _, limit, _ in cases) + SLACK_S, "the hung requests waited in parallel"
    assert len(echo_times) >= 3, "echo requests were served while the backends hung"
    assert set(echo_statuses) == {200}, echo_statuses
    assert max(echo_times) < 1.0, sorted(echo_times)[-3:]
