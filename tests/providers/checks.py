"""What every adapter must do, run against its wire fake in process (one module per type uses these).

def test_chat(): run(OpenAI, check_chat)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from tests.fakes.server import State
from tests.inprocess import FAKE_KEY, Fake, Gateway, config, fake_server

__all__ = ["AdapterChecks", "Backend", "Fake", "Gateway", "run"]

Scenario = Callable[[Fake, Gateway], Awaitable[None]]


@dataclass(frozen=True)
class Backend:
    type: str
    protocol: Callable[[State], asyncio.Protocol]
    base_path: str = "/v1"  # base_url = the fake's url + this
    model: str = "model-a"
    other: str = "model-b"
    extra: str = ""  # more provider settings (YAML, indented by 4)
    embed_model: str = "model-a"


def gateway_config(backend: Backend, fake: Fake) -> str:
    providers = f"""  p:
    type: {backend.type}
    base_url: {fake.url}{backend.base_path}
    api_key: {FAKE_KEY}
{backend.extra}"""
    models = f"""  m:
    targets: [{{provider: p, model: {backend.model}}}, {{provider: p, model: {backend.other}}}]
  e:
    targets: [{{provider: p, model: {backend.embed_model}}}]
"""
    return config(providers, models, "routing:\n  retries: 1\n")


def run(backend: Backend, scenario: Scenario) -> None:
    async def main() -> None:
        async with fake_server(backend.protocol) as fake, Gateway(gateway_config(backend, fake)) as gw:
            await scenario(fake, gw)

    asyncio.run(main())


class AdapterChecks:
    """The checks every adapter passes; each backend type's module subclasses this with its ``backend``."""

    backend: Backend

    def test_chat_whole_and_streamed(self) -> None:
        run(self.backend, check_chat)

    def test_legacy_completions_whole_and_streamed(self) -> None:
        run(self.backend, check_completions)

    def test_anthropic_messages_whole_and_streamed(self) -> None:
        run(self.backend, check_messages)

    def test_a_failure_before_the_answer_is_retried_on_the_other_target(self) -> None:
        run(self.backend, check_early_failure_is_retried)

    def test_errors_come_in_the_client_protocols_envelope(self) -> None:
        run(self.backend, check_error_envelopes)

    def test_embeddings(self) -> None:
        run(self.backend, check_embeddings)


def chat(stream: bool = False, text: str = "hello there") -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], "stream": stream, "max_tokens": 50}


def messages(stream: bool = False) -> dict[str, object]:
    return {
        "model": "m",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hello there"}],
        "stream": stream,
    }


async def check_chat(fake: Fake, gw: Gateway) -> None:
    got = await gw.post("/v1/chat/completions", chat())
    assert got.status == 200, got.body
    answer = got.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"]
    assert answer["usage"]["total_tokens"] > 0
    assert got.headers["x-gw-provider"] == "p"

    got = await gw.post(
        "/v1/chat/completions", {**chat(stream=True), "stream_options": {"include_usage": True}}
    )
    assert got.status == 200, got.body
    events = got.events()
    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] and c["created"] for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert [
        c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]
    ]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


async def check_completions(fake: Fake, gw: Gateway) -> None:
    body = {"model": "m", "prompt": "hello there", "max_tokens": 50}
    got = await gw.post("/v1/completions", body)
    assert got.status == 200, got.body
    answer = got.json()
    assert answer["object"] == "text_completion" and answer["choices"][0]["text"]

    got = await gw.post("/v1/completions", {**body, "stream": True})
    assert got.status == 200, got.body
    events = got.events()
    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"])


async def check_messages(fake: Fake, gw: Gateway) -> None:
    got = await gw.post("/v1/messages", messages())
    assert got.status == 200, got.body
    answer = got.json()
    assert answer["type"] == "message" and answer["role"] == "assistant"
    assert answer["content"][0]["type"] == "text" and answer["content"][0]["text"]
    assert answer["stop_reason"] == "end_turn"

    got = await gw.post("/v1/messages", messages(stream=True))
    assert got.status == 200, got.body
    kinds = [line[7:] for line in got.body.split(b"\n") if line.startswith(b"event: ")]
    assert kinds[0] == b"message_start" and kinds[-1] == b"message_stop"
    assert b"content_block_delta" in kinds and b"message_delta" in kinds


async def check_early_failure_is_retried(fake: Fake, gw: Gateway) -> None:
    for stream in (False, True):
        fake.set_mode(status=503, times=1)
        before = fake.state.stats["requests"]
        got = await gw.post("/v1/chat/completions", chat(stream=stream))
        assert got.status == 200, got.body
        assert fake.state.stats["requests"] - before == 2


async def check_error_envelopes(fake: Fake, gw: Gateway) -> None:
    fake.set_mode(status=400, times=2)
    got = await gw.post("/v1/chat/completions", chat())
    assert got.status == 400 and got.json()["error"]["type"] == "invalid_request_error"
    assert got.headers["x-request-id"]
    got = await gw.post("/v1/messages", messages())
    assert got.status == 400 and got.json()["type"] == "error"
    assert got.headers["x-request-id"]


async def check_embeddings(fake: Fake, gw: Gateway) -> None:
    got = await gw.post("/v1/embeddings", {"model": "e", "input": ["a", "b"]})
    assert got.status == 200, got.body
    data = got.json()["data"]
    assert [d["index"] for d in data] == [0, 1] and all(d["embedding"] for d in data)


async def check_no_embeddings(fake: Fake, gw: Gateway) -> None:
    got = await gw.post("/v1/embeddings", {"model": "e", "input": "a"})
    assert got.status == 400
    assert got.json()["error"]["code"] == "unsupported_endpoint"
