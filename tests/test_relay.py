"""The relay in process: one send per upstream read, the client leaving, a failure after the commit,
what it hands the response cache."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import orjson
import pytest

from tests.fakes.openai_server import FakeProtocol
from tests.inprocess import FAKE_KEY, Fake, Gateway, config, fake_server

CHAT = "/v1/chat/completions"


def _config(fake: Fake, extra: str = "") -> str:
    providers = f"""  up:
    type: openai
    base_url: {fake.url}/v1
    api_key: {FAKE_KEY}
    idle_timeout_s: 5
  demo:
    type: echo
"""
    models = """  m:
    targets: [{provider: up, model: a}]
  echo:
    targets: [{provider: demo, model: echo}]
"""
    return config(providers, models, "routing:\n  retries: 0\n" + extra)


def _chat(model: str = "m", stream: bool = True, **fake: object) -> dict[str, object]:
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": "a b c d e f"}],
        "stream": stream,
    }
    if fake:
        body["fake"] = fake
    return body


def run(scenario: Callable[[Fake, Gateway], Awaitable[None]], extra: str = "") -> None:
    async def main() -> None:
        async with fake_server(FakeProtocol) as fake, Gateway(_config(fake, extra), flush_interval=0.05) as gw:
            await scenario(fake, gw)

    asyncio.run(main())


async def _until(check: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.01)


def _idle(gw: Gateway) -> bool:
    runtime = gw.app.worker.runtime
    return runtime is not None and runtime.active == 0 and gw.app.worker.batch.active == 0


def test_what_one_upstream_read_delivered_goes_out_in_one_send() -> None:
    async def scenario(fake: Fake, gw: Gateway) -> None:
        got = await gw.post(CHAT, _chat("echo"))  # echo has its whole answer at once: one read
        assert got.status == 200
        assert len(got.events()) >= 8  # role, six words, finish, [DONE]
        assert len(got.sends) == 1

    run(scenario)


def test_events_that_arrive_apart_are_never_held_back() -> None:
    async def scenario(fake: Fake, gw: Gateway) -> None:
        got = await gw.post(CHAT, _chat(chunks=4, chunk_delay_s=0.05))
        assert got.status == 200
        content = [e for e in got.events() if b'"content":"w' in e]
        assert len(content) == 4
        # Each content event came 50 ms after the one before: each went out on its own.
        assert len(got.sends) >= 4

    run(scenario)


def test_a_failure_after_the_first_event_ends_the_stream_with_an_error_event_and_done() -> None:
    async def scenario(fake: Fake, gw: Gateway) -> None:
        got = await gw.post(CHAT, _chat(chunks=6, fault="reset_mid_stream", after=2))
        assert got.status == 200
        events = got.events()
        assert b'"error"' in events[-2]
        assert events[-1] == b"[DONE]"
        assert not any(b'"finish_reason":"' in e for e in events)
        await _until(lambda: _idle(gw))

    run(scenario)


def test_a_client_leaving_mid_stream_closes_the_upstream_and_ends_the_request() -> None:
    async def scenario(fake: Fake, gw: Gateway) -> None:
        leave = asyncio.Event()
        task = asyncio.ensure_future(gw.post(CHAT, _chat(chunks=50, chunk_delay_s=0.05), leave=leave))
        await _until(lambda: fake.state.stats["streams_started"] == 1)
        await asyncio.sleep(0.1)
        leave.set()
        got = await task
        assert got.status == 200 and got.sends
        await _until(lambda: fake.state.stats["client_disconnects"] == 1)
        await _until(lambda: _idle(gw))

    run(scenario)


def test_a_client_leaving_before_the_stream_body_starts_still_ends_the_request() -> None:
    async def scenario(fake: Fake, gw: Gateway) -> None:
        with contextlib.suppress(OSError):
            await gw.post(CHAT, _chat(chunks=50, chunk_delay_s=0.05), leave_at_start=True)
        await _until(lambda: fake.state.stats["client_disconnects"] == 1)
        await _until(lambda: _idle(gw))

    run(scenario)


def test_a_client_leaving_a_whole_answer_ends_the_request_at_once() -> None:
    async def scenario(fake: Fake, gw: Gateway) -> None:
        leave = asyncio.Event()
        started = time.monotonic()
        task = asyncio.ensure_future(gw.post(CHAT, _chat(stream=False, delay_s=3), leave=leave))
        await _until(lambda: fake.state.stats["requests"] == 1)
        leave.set()
        await task
        assert time.monotonic() - started < 1.5
        await _until(lambda: _idle(gw))

    run(scenario)


def test_a_client_leaving_a_whole_answer_cancels_the_upstream_request() -> None:
    async def scenario(fake: Fake, gw: Gateway) -> None:
        leave = asyncio.Event()
        task = asyncio.ensure_future(gw.post(CHAT, _chat(stream=False, delay_s=3), leave=leave))
        await _until(lambda: fake.state.stats["requests"] == 1)
        leave.set()
        await task
        await _until(lambda: fake.state.stats["client_disconnects"] == 1, timeout=1.5)

    run(scenario)


CACHE = "cache: {backend: memory}\n"


def test_a_stream_the_client_left_is_not_cached() -> None:
    async def scenario(fake: Fake, gw: Gateway) -> None:
        body = _chat(chunks=20, chunk_delay_s=0.02)
        leave = asyncio.Event()
        task = asyncio.ensure_future(gw.post(CHAT, body, leave=leave))
        await _until(lambda: fake.state.stats["streams_started"] == 1)
        leave.set()
        await task
        await _until(lambda: _idle(gw))
        whole = await gw.post(CHAT, body)
        assert whole.headers["x-gw-cache"] == "miss" and whole.body.endswith(b"data: [DONE]\n\n")
        again = await gw.post(CHAT, body)
        assert again.headers["x-gw-cache"] == "hit" and again.body == whole.body
        assert fake.state.stats["requests"] == 2

    run(scenario, CACHE)


def test_answers_over_the_entry_limit_are_not_cached() -> None:
    async def scenario(fake: Fake, gw: Gateway) -> None:
        big = _chat(stream=False, chunks=180_000)  # "w0 w1 ... w179999": 1.3 MB of content
        answers = [await gw.post(CHAT, big) for _ in range(2)]
        assert len(answers[0].body) > 1024 * 1024
        assert [a.headers["x-gw-cache"] for a in answers] == ["miss", "miss"]
        many = _chat(chunks=8000)  # 8,000 events of about 150 bytes: a larger stream
        first = await gw.post(CHAT, many)
        assert len(first.body) > 1024 * 1024
        assert (await gw.post(CHAT, many)).headers["x-gw-cache"] == "miss"
        assert fake.state.stats["requests"] == 4

    run(scenario, CACHE)


def test_a_stream_hit_is_logged_with_its_body_as_a_relayed_one_is(capfd: pytest.CaptureFixture[str]) -> None:
    async def scenario(fake: Fake, gw: Gateway) -> None:
        body = _chat(chunks=3)
        assert [(await gw.post(CHAT, body)).headers["x-gw-cache"] for _ in range(2)] == ["miss", "hit"]
        await _until(lambda: _idle(gw))

    run(scenario, CACHE + "logging: {bodies: true}\n")
    lines = [orjson.loads(x) for x in capfd.readouterr().out.splitlines() if '"event":"request"' in x]
    assert [x["cache_hit"] for x in lines] == [False, True]
    assert lines[0]["response_body"] == lines[1]["response_body"]
    assert lines[1]["response_body"].endswith("data: [DONE]\n\n") and lines[1]["provider"] is None
