"""Routing in process: pick by weight, retry, fall back, a stream's commit point, breakers.

gw runs as ``create_app`` in the test's loop against the OpenAI wire fake on
loopback; the breakers read an injected clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tests.fakes.openai_server import FakeProtocol
from tests.inprocess import FAKE_KEY, Fake, Gateway, config, fake_server

CHAT = "/v1/chat/completions"


class Clock:
    """Monotonic seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _config(fake: Fake, models: str, routing: str = "") -> str:
    dead = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there
    providers = f"""  up:
    type: openai
    base_url: {fake.url}/v1
    api_key: {FAKE_KEY}
  dead:
    type: openai
    base_url: {dead}
    connect_timeout_s: 1
"""
    return config(providers, models, routing)


def _models_asked(fake: Fake) -> list[str]:
    return [r["body"]["model"] for r in fake.state.recorded if r["path"].endswith("/chat/completions")]


def _chat(model: str, stream: bool = False, **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream, **extra}


def run(scenario: Callable[[Fake], Awaitable[None]]) -> None:
    async def main() -> None:
        async with fake_server(FakeProtocol) as fake:
            await scenario(fake)

    asyncio.run(main())


def test_targets_are_picked_by_weight_in_a_smooth_cycle() -> None:
    async def scenario(fake: Fake) -> None:
        models = """  m:
    targets: [{provider: up, model: a, weight: 2}, {provider: up, model: b}]
"""
        async with Gateway(_config(fake, models)) as gw:
            for _ in range(6):
                assert (await gw.post(CHAT, _chat("m"))).status == 200
        assert _models_asked(fake) == ["a", "b", "a", "a", "b", "a"]

    run(scenario)


def test_a_retryable_failure_is_retried_on_another_target() -> None:
    async def scenario(fake: Fake) -> None:
        models = """  m:
    targets: [{provider: up, model: a}, {provider: up, model: b}]
"""
        async with Gateway(_config(fake, models, "routing:\n  retries: 1\n")) as gw:
            fake.set_mode(status=503, times=1)
            got = await gw.post(CHAT, _chat("m"))
        assert got.status == 200
        assert _models_asked(fake) == ["a", "b"]

    run(scenario)


def test_a_client_error_is_not_retried() -> None:
    async def scenario(fake: Fake) -> None:
        models = """  m:
    targets: [{provider: up, model: a}, {provider: up, model: b}]
"""
        async with Gateway(_config(fake, models, "routing:\n  retries: 1\n")) as gw:
            fake.set_mode(status=400, times=1)
            got = await gw.post(CHAT, _chat("m"))
        assert got.status == 400
        assert got.headers["x-request-id"]
        assert _models_asked(fake) == ["a"]

    run(scenario)


def test_the_fallback_model_answers_when_every_target_failed() -> None:
    async def scenario(fake: Fake) -> None:
        models = """  m:
    targets: [{provider: dead, model: nothing}]
    fallbacks: [backup]
  backup:
    targets: [{provider: up, model: spare}]
"""
        async with Gateway(_config(fake, models, "routing:\n  retries: 0\n")) as gw:
            got = await gw.post(CHAT, _chat("m"))
        assert got.status == 200
        assert got.headers["x-gw-provider"] == "up"
        assert _models_asked(fake) == ["spare"]

    run(scenario)


def test_a_stream_that_fails_before_its_first_event_is_retried_and_the_client_sees_one_stream() -> None:
    async def scenario(fake: Fake) -> None:
        models = """  m:
    targets: [{provider: up, model: a}, {provider: up, model: b}]
"""
        async with Gateway(_config(fake, models, "routing:\n  retries: 1\n")) as gw:
            # The first attempt's connection is reset before any event came.
            fake.set_mode(fault="reset_before_headers", times=1)
            got = await gw.post(CHAT, _chat("m", stream=True))
        assert got.status == 200
        events = got.events()
        assert events[-1] == b"[DONE]"
        assert not any(b'"error"' in e for e in events)
        assert _models_asked(fake) == ["a", "b"]

    run(scenario)


def test_an_open_circuit_keeps_its_target_out_until_its_cooldown_passes_on_the_clock() -> None:
    clock = Clock()

    async def scenario(fake: Fake) -> None:
        models = """  m:
    targets: [{provider: up, model: a}, {provider: up, model: b}]
"""
        routing = "routing:\n  retries: 0\n  circuit_breaker: {failures: 1, cooldown_s: 30}\n"
        async with Gateway(_config(fake, models, routing), clock=clock) as gw:
            fake.set_mode(status=503, times=1)
            assert (await gw.post(CHAT, _chat("m"))).status == 502  # a fails: its circuit opens
            for _ in range(3):
                assert (await gw.post(CHAT, _chat("m"))).status == 200
            assert _models_asked(fake) == ["a", "b", "b", "b"]
            clock.now += 31  # past the cooldown: a gets its one probe
            assert (await gw.post(CHAT, _chat("m"))).status == 200
            assert (await gw.post(CHAT, _chat("m"))).status == 200
        assert sorted(_models_asked(fake)[4:]) == ["a", "b"]

    run(scenario)


def test_every_target_ejected_answers_503_naming_the_wait() -> None:
    clock = Clock()

    async def scenario(fake: Fake) -> None:
        models = """  m:
    targets: [{provider: up, model: a}]
"""
        routing = "routing:\n  retries: 0\n  circuit_breaker: {failures: 1, cooldown_s: 30}\n"
        async with Gateway(_config(fake, models, routing), clock=clock) as gw:
            fake.set_mode(status=503, times=1)
            assert (await gw.post(CHAT, _chat("m"))).status == 502
            got = await gw.post(CHAT, _chat("m"))
            assert got.status == 503
            assert "next try in 30s" in got.json()["error"]["message"]
            clock.now += 20
            assert "next try in 10s" in (await gw.post(CHAT, _chat("m"))).json()["error"]["message"]

    run(scenario)
