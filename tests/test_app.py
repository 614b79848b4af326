"""The app in process: every exchange logged and counted, errors rendered once with their request id."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest

from gw import metrics
from gw.call import Call
from gw.context import Outcome
from tests.inprocess import Gateway, config

CONFIG = config("  demo:\n    type: echo\n", "  echo:\n    targets: [{provider: demo, model: echo}]\n")
CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}


def run(scenario: Callable[[Gateway], Awaitable[None]], **options: Any) -> None:
    async def main() -> None:
        async with Gateway(CONFIG, **options) as gw:
            await scenario(gw)

    asyncio.run(main())


def _request_lines(out: str) -> list[dict[str, Any]]:
    lines = [orjson.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "request"]


def _requests_total(**labels: str) -> float:
    child = metrics.REQUESTS.labels(**labels)
    return float(child._value.get())


def test_an_unknown_path_is_logged_counted_and_hints_at_the_v1_prefix(
    capfd: pytest.CaptureFixture[str],
) -> None:
    unknown = {"key": "", "model": "", "provider": "", "endpoint": "other", "status": "4xx"}
    wrong_method = {**unknown, "endpoint": "chat"}
    before = _requests_total(**unknown), _requests_total(**wrong_method)

    async def scenario(gw: Gateway) -> None:
        got = await gw.post("/chat/completions", CHAT, headers={"x-request-id": "req-404"})
        assert got.status == 404
        assert got.headers["x-request-id"] == "req-404"
        assert "did you mean /v1/chat/completions?" in got.json()["error"]["message"]
        got = await gw.request("GET", "/v1/chat/completions")
        assert got.status == 405 and got.headers["allow"] == "POST" and got.headers["x-request-id"]
        assert (await gw.request("GET", "/ready")).status == 200  # a probe: not logged

    run(scenario)
    assert (_requests_total(**unknown) - before[0], _requests_total(**wrong_method) - before[1]) == (1, 1)
    lines = _request_lines(capfd.readouterr().out)
    assert [(x["method"], x["path"], x["status"]) for x in lines] == [
        ("POST", "/chat/completions", 404),
        ("GET", "/v1/chat/completions", 405),
    ]
    assert lines[0]["request_id"] == "req-404"


def test_an_unexpected_failure_is_a_500_with_the_request_id_and_the_envelope_of_the_protocol(
    capfd: pytest.CaptureFixture[str],
) -> None:
    async def boom(call: Call, outcome: Outcome) -> bytes | None:
        raise RuntimeError("a bug")

    async def scenario(gw: Gateway) -> None:
        got = await gw.post("/v1/chat/completions", CHAT, headers={"x-request-id": "req-500"})
        assert got.status == 500 and got.headers["x-request-id"] == "req-500"
        assert got.json()["error"] == {
            "message": "internal error",
            "type": "api_error",
            "param": None,
            "code": None,
        }
        body = {"model": "echo", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        got = await gw.post("/v1/messages", body)
        assert got.status == 500 and got.headers["x-request-id"]
        assert got.json() == {"type": "error", "error": {"type": "api_error", "message": "internal error"}}

    run(scenario, steps=(boom,))
    lines = _request_lines(capfd.readouterr().out)
    assert [(x["path"], x["status"]) for x in lines] == [("/v1/chat/completions", 500), ("/v1/messages", 500)]


def test_a_step_before_routing_may_answer_the_request_itself() -> None:
    async def cached(call: Call, outcome: Outcome) -> bytes | None:
        outcome.cache_hit = True
        return b'{"cached":true}'

    async def scenario(gw: Gateway) -> None:
        got = await gw.post("/v1/chat/completions", CHAT)
        assert got.status == 200 and got.json() == {"cached": True}

    run(scenario, steps=(cached,))
