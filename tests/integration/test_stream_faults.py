"""SPEC §4 Streaming under upstream faults: the commit point, the error event, [DONE].

The SSE the client gets is parsed here from httpx's raw text, by the SSE rules
(any line end, comments, multi-line ``data:``), so what is checked is what any
client would see.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any, Iterator

import httpx
import openai
import pytest

from tests.conftest import APP_KEY, FAKE_KEY, Gateway
from tests.integration.sse import sse_data

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"
AUTH = {"authorization": f"Bearer {APP_KEY}"}
PROMPT = [{"role": "user", "content": "one two three four five"}]
MID_STREAM_FAULTS = ["reset_mid_stream", "stall_mid_stream", "garbage_mid_stream", "error_event", "truncate"]


@pytest.fixture(scope="module")
def http(gw_std: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw_std.url, headers=AUTH, timeout=10) as client:
        yield client


@pytest.fixture
def sdk(gw_std: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gw_std.url + "/v1", api_key=APP_KEY, max_retries=0) as client:
        yield client


class Stream:
    """A streamed chat answer, parsed: the chunks, and what ended it."""

    def __init__(self, resp: httpx.Response, elapsed: float) -> None:
        self.resp = resp
        self.elapsed = elapsed
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("text/event-stream")
        self.events = sse_data(resp.text)
        assert self.events and self.events[-1] == "[DONE]", resp.text[-500:]
        assert self.events.count("[DONE]") == 1, "nothing after [DONE]"
        self.objects: list[dict[str, Any]] = [json.loads(e) for e in self.events[:-1]]
        self.errors = [o for o in self.objects if "error" in o]
        self.chunks = [o for o in self.objects if "error" not in o]
        for chunk in self.chunks:
            assert chunk["object"] == "chat.completion.chunk", chunk

    def assert_well_framed(self) -> None:
        """SPEC: the stream ends with `data: [DONE]\\n\\n` (gw forwards an upstream's
        CRLF framing as it is, so `\\r\\n\\r\\n` is its CRLF form), and no line end
        is a lone CR, which no upstream here ever sends."""
        tail = self.resp.text[-20:]
        assert tail.endswith("data: [DONE]\n\n") or tail.endswith("data: [DONE]\r\n\r\n"), repr(tail)
        assert re.search(r"\r(?!\n)", self.resp.text) is None, "a CR lost its LF"

    @property
    def text(self) -> str:
        return "".join(c["choices"][0]["delta"].get("content") or "" for c in self.chunks if c["choices"])

    @property
    def finishes(self) -> list[str]:
        return [ch["finish_reason"] for c in self.chunks for ch in c["choices"] if ch.get("finish_reason") is not None]

    @property
    def usage_chunks(self) -> list[dict[str, Any]]:
        return [c for c in self.chunks if not c["choices"]]

    def assert_complete(self, text: str, include_usage: bool) -> None:
        assert not self.errors, self.errors
        assert self.text == text
        assert len(self.finishes) == 1, self.finishes
        if include_usage:
            assert len(self.usage_chunks) == 1 and self.chunks[-1] is self.usage_chunks[0]
            assert self.chunks[-1]["usage"]["completion_tokens"] > 0
        else:
            assert self.usage_chunks == []
            assert all(c.get("usage") is None for c in self.chunks)
        self.assert_well_framed()


def stream(http: httpx.Client, fake: dict | None = None, model: str = "gpt", **extra: Any) -> Stream:
    body: dict[str, Any] = {"model": model, "messages": PROMPT, "stream": True, **extra}
    if fake is not None:
        body["fake"] = fake
    started = time.monotonic()
    resp = http.post(CHAT, json=body)
    return Stream(resp, time.monotonic() - started)


def shape(chunk: dict[str, Any]) -> dict[str, Any]:
    """A chunk without what differs between two calls (id, created)."""
    return {k: v for k, v in chunk.items() if k not in ("id", "created")}


# ---------------------------------------------------------------- faults after the first byte


@pytest.mark.parametrize("fault", MID_STREAM_FAULTS)
def test_a_fault_after_the_first_byte_ends_the_stream_with_one_error_event_then_done(http, fault):
    got = stream(http, {"fault": fault, "after": 2})
    assert len(got.errors) == 1, got.events
    assert got.objects[-1] is got.errors[0], "the error event comes last, just before [DONE]"
    error = got.errors[0]["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert {"message", "type", "param", "code"} <= set(error)
    assert got.text == "fake: one ", "the first content chunks reached the client"
    assert got.chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    assert got.finishes == [], "never a made-up finish_reason"
    got.assert_well_framed()
    if fault == "stall_mid_stream":
        assert 0.9 <= got.elapsed < 3.0, got.elapsed  # idle_timeout_s: 1
    else:
        assert got.elapsed < 2.0, got.elapsed


@pytest.mark.parametrize("fault", MID_STREAM_FAULTS)
def test_the_openai_sdk_raises_api_error_on_the_error_event_after_the_first_chunks(sdk, fault):
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in sdk.chat.completions.create(
            model="gpt", messages=PROMPT, stream=True, extra_body={"fake": {"fault": fault, "after": 2}}
        ):
            received.append(chunk)
    exc = info.value
    # Not a status error (the HTTP status was 200) nor a connection error: the
    # SDK read gw's error event and raised it as it is.
    assert type(exc) is openai.APIError
    assert isinstance(exc.body, dict)
    assert exc.message == exc.body["message"] and exc.message
    assert exc.type == exc.body["type"]
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "fake: one "
    assert all(ch.finish_reason is None for c in received for ch in c.choices)


@pytest.mark.parametrize(
    ("fake_opts", "status"),
    [({"fault": "reset_before_headers"}, 502), ({"status": 503}, 502), ({"fault": "hang"}, 504)],
    ids=["reset-before-headers", "status-503", "hang"],
)
def test_a_failure_before_the_first_byte_is_an_http_error_not_a_stream(http, fake_opts, status):
    resp = http.post(CHAT, json={"model": "gpt", "messages": PROMPT, "stream": True, "fake": fake_opts})
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers["x-request-id"]
    error = resp.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error)


def test_the_openai_sdk_raises_a_status_error_when_a_stream_fails_before_the_first_byte(sdk):
    with pytest.raises(openai.InternalServerError) as info:
        sdk.chat.completions.create(
            model="gpt", messages=PROMPT, stream=True, extra_body={"fake": {"fault": "reset_before_headers"}}
        )
    assert info.value.status_code == 502


# ---------------------------------------------------------------- framing


CONTENT = "héllo wörld 你好 🎉 and more ünïcödé ✓ text"

FRAMINGS = [
    {"split": "bytes"},
    {"split": "random", "seed": 1},
    {"split": "random", "seed": 2},
    {"split": "random", "seed": 7},
    {"split": "random", "seed": 12345},
    {"crlf": True},
    {"comments": True},
    {"multiline": True},
    {"split": "random", "seed": 3, "crlf": True, "comments": True, "multiline": True},
    {"split": "bytes", "crlf": True, "multiline": True},
]


@pytest.mark.parametrize("framing", FRAMINGS, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
def test_any_framing_of_the_upstream_stream_gives_the_client_the_same_stream(http, framing):
    usage = {"stream_options": {"include_usage": True}}
    plain = stream(http, {"content": CONTENT}, **usage)
    plain.assert_complete(CONTENT, include_usage=True)
    got = stream(http, {"content": CONTENT, **framing}, **usage)
    assert [shape(c) for c in got.chunks] == [shape(c) for c in plain.chunks]
    got.assert_complete(CONTENT, include_usage=True)


def test_a_split_stream_without_include_usage_has_no_usage_chunk(http):
    got = stream(http, {"content": CONTENT, "split": "random", "seed": 4})
    got.assert_complete(CONTENT, include_usage=False)


def test_multibyte_content_split_byte_by_byte_arrives_intact(http):
    got = stream(http, {"content": "🎉你好é" * 20, "split": "bytes"}, stream_options={"include_usage": True})
    got.assert_complete("🎉你好é" * 20, include_usage=True)


# ---------------------------------------------------------------- the client leaves


def read_events_then_leave(gw: Gateway, fake_opts: dict, n: int = 2) -> None:
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=10) as client:
        body = {"model": "gpt", "messages": PROMPT, "stream": True, "fake": fake_opts}
        with client.stream("POST", CHAT, json=body) as resp:
            assert resp.status_code == 200
            seen = 0
            for line in resp.iter_lines():
                if line.startswith("data:"):
                    seen += 1
                    if seen >= n:
                        break
    # leaving both blocks closed the connection mid-body


@pytest.mark.parametrize(
    "fake_opts",
    [{"chunk_delay_s": 0.2, "chunks": 50}, {"fault": "stall_mid_stream", "after": 2}],
    ids=["slow-stream", "stalled-stream"],
)
def test_a_client_leaving_mid_stream_cancels_the_upstream_request_at_once(gw_std, http, fake, fake_opts):
    before = fake.stats()
    read_events_then_leave(gw_std, fake_opts)
    left = time.monotonic()
    # The slow stream would run 10 s and a stall be cut by idle_timeout_s (1 s):
    # the cancellation must come well before either.
    after = fake.wait_for(lambda s: s["client_disconnects"] >= before["client_disconnects"] + 1, timeout=0.8)
    assert time.monotonic() - left < 0.8
    assert after["streams_completed"] == before["streams_completed"]
    again = stream(http, None, model="echo")
    again.assert_complete("one two three four five", include_usage=False)


def test_a_client_leaving_before_the_upstream_answers_cancels_the_upstream_request(fake, gateway):
    """The same promise while gw still waits for the upstream's headers."""
    gw = gateway(f"""
providers:
  patient:
    type: openai
    base_url: {fake.openai_base_url}
    api_key: {FAKE_KEY}
    first_byte_timeout_s: 10
    idle_timeout_s: 10
models:
  m:
    targets: [{{provider: patient, model: gpt-upstream}}]
routing:
  retries: 0
""")
    before = fake.stats()["client_disconnects"]
    body = {"model": "m", "messages": PROMPT, "stream": True, "fake": {"delay_s": 2.0}}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(gw.url + CHAT, json=body, timeout=0.3)
    # the upstream would answer after 2 s; gw must hang up on it long before
    fake.wait_for(lambda s: s["client_disconnects"] >= before + 1, timeout=0.8)


# ---------------------------------------------------------------- many at once


def test_concurrent_streams_where_half_fail_leave_the_healthy_half_intact(gw_std):
    faults = ["reset_mid_stream", "garbage_mid_stream", "error_event", "truncate"]

    async def one(client: httpx.AsyncClient, i: int) -> tuple[int, str, Stream]:
        if i % 2:
            fake_opts: dict[str, Any] = {"fault": faults[(i // 2) % len(faults)], "after": 3, "chunk_delay_s": 0.01,
                                         "chunks": 10}
        else:
            fake_opts = {"chunks": 12, "chunk_delay_s": 0.01, "split": "random", "seed": i}
        body = {"model": "gpt", "messages": PROMPT, "stream": True, "fake": fake_opts,
                "stream_options": {"include_usage": True}}
        started = time.monotonic()
        resp = await client.post(CHAT, json=body)
        return i, fake_opts.get("fault", ""), Stream(resp, time.monotonic() - started)

    async def main() -> list[tuple[int, str, Stream]]:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=gw_std.url, headers=AUTH, timeout=20, limits=limits) as client:
            return await asyncio.gather(*(one(client, i) for i in range(40)))

    results = asyncio.run(main())
    healthy = [s for i, fault, s in results if not fault]
    failed = [s for i, fault, s in results if fault]
    assert len(healthy) == 20 and len(failed) == 20
    words = " ".join(f"w{i}" for i in range(12))
    for got in healthy:
        got.assert_complete(words, include_usage=True)
    for got in failed:
        assert len(got.errors) == 1 and got.objects[-1] is got.errors[0]
        assert got.finishes == []
        assert got.text == "w0 w1 w2 "
        got.assert_well_framed()


# ---------------------------------------------------------------- echo


@pytest.mark.parametrize("include_usage", [True, False, None])
def test_echo_streams_have_a_usage_chunk_only_when_asked(http, include_usage):
    extra: dict[str, Any] = {}
    if include_usage is not None:
        extra["stream_options"] = {"include_usage": include_usage}
    got = stream(http, None, model="echo", **extra)
    got.assert_complete("one two three four five", include_usage=include_usage is True)
    assert got.finishes == ["stop"]
    if include_usage:
        assert got.chunks[-1]["usage"] == {
            "prompt_tokens": 5,
            "completion_tokens": 5,
            "total_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 0},  # the event core's usage, as every backend's
        }
