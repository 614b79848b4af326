"""POST /v1/messages: the official anthropic SDK -> gw -> echo, the OpenAI fake
(converted), the Anthropic fake (passed through).

What the client sees is checked with the SDK (its own stream accumulator) and as
raw SSE; what the backend got is read back from the fakes' request logs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from tests.conftest import FAKE_KEY, Gateway, free_port
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.runner import FakeUpstream

pytestmark = pytest.mark.integration

KEY = "gw-test-key-messages-0123456789"
ANTHROPIC_KEY = "sk-ant-fake-upstream-key-0123456789abcdef"
ECHO_ONLY_KEY = "gw-test-key-messages-echo-0123456789"
MESSAGES = "/v1/messages"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def config(fake: FakeUpstream, ant: AnthropicFake) -> str:
    dead = free_port()
    return f"""
server:
  max_body_bytes: 65536
auth:
  keys:
    - name: app
      key: {KEY}
      models: ["*"]
    - name: echo-only
      key: {ECHO_ONLY_KEY}
      models: ["echo"]
providers:
  up:
    type: openai
    base_url: {fake.openai_base_url}
    api_key: {FAKE_KEY}
    first_byte_timeout_s: 2
    idle_timeout_s: 2
    timeout_s: 5
  demo:
    type: echo
  ant:
    type: anthropic
    base_url: {ant.anthropic_base_url}
    api_key: {ANTHROPIC_KEY}
    first_byte_timeout_s: 2
    idle_timeout_s: 2
    timeout_s: 5
  dead:
    type: openai
    base_url: http://127.0.0.1:{dead}/v1
    connect_timeout_s: 1
  dead-ant:
    type: anthropic
    base_url: http://127.0.0.1:{dead}/v1
    api_key: {ANTHROPIC_KEY}
    connect_timeout_s: 1
models:
  gpt:
    targets: [{{provider: up, model: gpt-upstream}}]
  echo:
    targets: [{{provider: demo, model: echo-upstream}}]
  claude:
    targets: [{{provider: ant, model: claude-upstream, default_max_tokens: 777}}]
  dead-claude-then-gpt:
    targets: [{{provider: dead-ant, model: claude-upstream, weight: 100}}, {{provider: up, model: gpt-upstream}}]
  dead-gpt-then-claude:
    targets: [{{provider: dead, model: gpt-upstream, weight: 100}}, {{provider: ant, model: claude-upstream}}]
routing:
  retries: 1
  # These tests fail one target on purpose, over and over: keep its breaker shut.
  circuit_breaker: {{failures: 1000, cooldown_s: 1}}
"""


@pytest.fixture(scope="module")
def ant() -> Iterator[AnthropicFake]:
    with AnthropicFake(api_key=ANTHROPIC_KEY) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gw(fake: FakeUpstream, ant: AnthropicFake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    path: Path = tmp_path_factory.mktemp("gw-messages") / "config.yaml"
    path.write_text(config(fake, ant))
    gateway = Gateway(path)
    yield gateway
    gateway.close()


@pytest.fixture
def client(gw: Gateway) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def http(gw: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.url, headers=HEADERS, timeout=10) as c:
        yield c


def directive(**fake: Any) -> str:
    """The text that steers the fake: ``FAKE {...}``."""
    return "FAKE " + orjson.dumps(fake).decode()


def sse_events(text: str) -> list[tuple[str | None, dict]]:
    """(event name, data) of each event, by the SSE rules (any line end)."""
    out: list[tuple[str | None, dict]] = []
    name: str | None = None
    data: list[str] = []
    for line in re.split(r"\r\n|\r|\n", text):
        if not line:
            if data:
                out.append((name, orjson.loads("\n".join(data))))
            name, data = None, []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
    return out


def raw_stream(http: httpx.Client, body: dict) -> tuple[httpx.Response, list[tuple[str | None, dict]]]:
    resp = http.post(MESSAGES, json={"max_tokens": 100, "stream": True, **body})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/event-stream")
    return resp, sse_events(resp.text)


def names(events: list[tuple[str | None, dict]]) -> list[str | None]:
    for name, data in events:
        assert name == data["type"], (name, data)  # every event is named after its type
    return [name for name, _ in events]


def error_of(resp: httpx.Response, status: int) -> dict:
    """The Anthropic error envelope, exactly."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers.get("x-request-id")
    body = resp.json()
    assert set(body) == {"type", "error"} and body["type"] == "error", body
    assert set(body["error"]) == {"type", "message"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


# ---------------------------------------------------------------- answers


@pytest.mark.parametrize(("model", "upstream"), [("echo", None), ("gpt", "gpt-upstream")])
def test_create_answers_an_anthropic_message(client, fake, model, upstream):
    fake.reset()
    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "hello big world"}]
    )
    message = raw.parse()
    assert raw.headers["x-gw-provider"] == ("demo" if model == "echo" else "up")
    assert raw.headers["x-request-id"]
    assert re.fullmatch(r"msg_[0-9a-f]{24}", message.id)
    assert message.type == "message" and message.role == "assistant"
    assert message.model == model  # the name the client asked for
    expected = "hello big world" if model == "echo" else "fake: hello big world"
    assert [(b.type, b.text) for b in message.content] == [("text", expected)]
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens == 3
    assert message.usage.output_tokens == len(expected.split())
    assert message.usage.cache_read_input_tokens == 0
    assert len(fake.requests()) == (0 if upstream is None else 1)


def test_the_openai_backend_receives_the_converted_request(client, fake):
    fake.reset()
    client.messages.create(
        model="gpt",
        max_tokens=321,
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        extra_body={"temperature": 0.3, "top_p": 0.8, "top_k": 20},  # no longer typed in this SDK
        stop_sequences=["END"],
        metadata={"user_id": "u-7"},
        tools=[WEATHER_TOOL],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "use the tool", "signature": "c2ln"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18°C"},
                {"type": "text", "text": "thanks"},
            ]},
        ],
    )  # fmt: skip
    sent = fake.requests()[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == f"Bearer {FAKE_KEY}"
    assert sent["body"] == {
        "model": "gpt-upstream",
        "messages": [
            {"role": "system", "content": "Be brief.\n\nBe kind."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            ]},
            {"role": "tool", "tool_call_id": "toolu_01", "content": "18°C"},
            {"role": "user", "content": "thanks"},
        ],
        "max_tokens": 321,
        "temperature": 0.3,
        "top_p": 0.8,
        "top_k": 20,
        "stop": ["END"],
        "user": "u-7",
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "The weather of a city", "parameters": WEATHER_TOOL["input_schema"]}}],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning_effort": "low",  # thinking with a budget of 1024
    }  # fmt: skip


@pytest.mark.parametrize(("model", "expected"), [("echo", "one two three"), ("gpt", "fake: one two three")])
def test_stream_final_message_is_accepted_by_the_sdk_accumulator(client, model, expected):
    with client.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "one two three"}]
    ) as stream:
        texts = list(stream.text_stream)
        message = stream.get_final_message()
    assert "".join(texts) == expected
    assert len(texts) == len(expected.split())  # word by word, as the backend streamed it
    assert message.model == model
    assert [(b.type, b.text) for b in message.content] == [("text", expected)]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 3
    assert message.usage.output_tokens == len(expected.split())


@pytest.mark.parametrize("model", ["echo", "gpt"])
def test_raw_stream_is_the_anthropic_event_sequence(http, fake, model):
    fake.reset()
    resp, events = raw_stream(http, {"model": model, "messages": [{"role": "user", "content": "a b"}]})
    assert resp.headers["x-gw-provider"] == ("demo" if model == "echo" else "up")
    words = 2 if model == "echo" else 3
    assert names(events) == [
        "message_start", "content_block_start", *["content_block_delta"] * words, "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert resp.text.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert "[DONE]" not in resp.text
    start = events[0][1]["message"]
    assert start["content"] == [] and start["model"] == model and start["stop_reason"] is None
    assert events[-2][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2][1]["usage"]["output_tokens"] == words
    assert events[-2][1]["usage"]["input_tokens"] == 2
    if model == "gpt":
        sent = fake.requests()[-1]["body"]
        assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("split", [{"split": "bytes"}, {"split": "random", "seed": 3}, {"crlf": True, "comments": True}])
def test_upstream_reads_cut_anywhere_give_the_whole_text(client, split):
    content = "héllo wörld 你好 🎉 done"
    with client.messages.stream(
        model="gpt", max_tokens=100, messages=[{"role": "user", "content": directive(content=content, **split)}]
    ) as stream:
        message = stream.get_final_message()
    assert message.content[0].text == content
    assert message.stop_reason == "end_turn"


def test_max_tokens_cut_is_stop_reason_max_tokens(client):
    message = client.messages.create(model="echo", max_tokens=2, messages=[{"role": "user", "content": "a b c d"}])
    assert message.content[0].text == "a b"
    assert message.stop_reason == "max_tokens"
    with client.messages.stream(model="gpt", max_tokens=2, messages=[{"role": "user", "content": "a b c d"}]) as s:
        assert s.get_final_message().stop_reason == "max_tokens"


def test_max_tokens_may_be_left_out(http):
    resp = http.post(MESSAGES, json={"model": "echo", "messages": [{"role": "user", "content": "hi there"}]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["content"] == [{"type": "text", "text": "hi there"}]


def test_bearer_keys_work_too(gw):
    resp = httpx.post(
        gw.url + MESSAGES,
        headers={"authorization": f"Bearer {KEY}"},
        json={"model": "echo", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert resp.status_code == 200, resp.text


# ---------------------------------------------------------------- tools


TOOL_CALLS = [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "now", "arguments": ""}]


def test_tool_calls_from_the_openai_backend_are_tool_use_blocks(client):
    message = client.messages.create(
        model="gpt", max_tokens=100, tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": directive(tool_calls=TOOL_CALLS, content="")}],
    )  # fmt: skip
    assert message.stop_reason == "tool_use"
    assert [(b.type, b.name, b.input) for b in message.content] == [
        ("tool_use", "get_weather", {"city": "Paris"}),
        ("tool_use", "now", {}),
    ]
    assert message.content[0].id != message.content[1].id


def test_streamed_tool_calls_accumulate_into_distinct_blocks(client, http):
    body = {"model": "gpt", "tools": [WEATHER_TOOL],
            "messages": [{"role": "user", "content": directive(tool_calls=TOOL_CALLS, content="Let me see.")}]}  # fmt: skip
    with client.messages.stream(max_tokens=100, **body) as stream:
        message = stream.get_final_message()
    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[0].text == "Let me see."
    assert (message.content[1].name, message.content[1].input) == ("get_weather", {"city": "Paris"})
    assert (message.content[2].name, message.content[2].input) == ("now", {})
    assert message.stop_reason == "tool_use"
    _, events = raw_stream(http, body)
    starts = [d for n, d in events if n == "content_block_start"]
    assert [d["index"] for d in starts] == [0, 1, 2]
    assert [d["content_block"]["type"] for d in starts] == ["text", "tool_use", "tool_use"]
    assert starts[1]["content_block"]["input"] == {}
    fragments = [d["delta"]["partial_json"] for n, d in events if n == "content_block_delta" and d["index"] == 1]
    assert len(fragments) == 2 and orjson.loads("".join(fragments)) == {"city": "Paris"}


def test_a_tool_round_trip_sends_the_results_back_under_their_ids(client, fake):
    first = client.messages.create(
        model="gpt", max_tokens=100, tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": directive(tool_calls=TOOL_CALLS[:1], content="")}],
    )  # fmt: skip
    call = first.content[0]
    assert call.type == "tool_use"
    fake.reset()
    second = client.messages.create(
        model="gpt", max_tokens=100, tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": [{"type": "text", "text": "18°C"}]},
                {"type": "text", "text": "so?"},
            ]},
        ],
    )  # fmt: skip
    assert second.content[0].text == "fake: so?"
    sent = fake.requests()[-1]["body"]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.id
    assert orjson.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert sent[2] == {"role": "tool", "tool_call_id": call.id, "content": "18°C"}
    assert sent[3] == {"role": "user", "content": "so?"}


def test_a_forced_tool_on_echo_is_called_in_both_modes(client):
    kwargs: dict[str, Any] = {
        "model": "echo", "max_tokens": 100, "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "messages": [{"role": "user", "content": "Paris"}],
    }  # fmt: skip
    whole = client.messages.create(**kwargs)
    with client.messages.stream(**kwargs) as stream:
        streamed = stream.get_final_message()
    for message in (whole, streamed):
        assert message.stop_reason == "tool_use"
        assert [(b.type, b.name, b.input) for b in message.content] == [("tool_use", "get_weather", {"text": "Paris"})]


# ---------------------------------------------------------------- errors


def test_a_body_that_is_not_json_is_a_400_in_the_anthropic_envelope(http):
    resp = http.post(MESSAGES, content=b"{nope", headers={"content-type": "application/json"})
    assert error_of(resp, 400)["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "'model' is required"),
        ({"model": "echo"}, "'messages' is required"),
        ({"model": "echo", "messages": []}, "must not be empty"),
        ({"model": "echo", "messages": [{"role": "tool", "content": "x"}]}, "'user', 'assistant' or 'system'"),
        ({"model": "echo", "messages": [{"role": "user", "content": 5}]}, "content"),
        ({"model": "echo", "messages": [{"role": "user", "content": "x"}], "max_tokens": "ten"}, "max_tokens"),
        ({"model": "echo", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}, "max_tokens"),
        ({"model": "echo", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
        ({"model": "gpt", "messages": [{"role": "user", "content": "x"}],
          "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "web_search_20250305"),
        ({"model": "gpt", "stream": True, "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}]}]},
         "plain-text documents"),
    ],
)  # fmt: skip
def test_invalid_requests_are_400_in_the_anthropic_envelope(http, fake, body, needle):
    fake.reset()
    error = error_of(http.post(MESSAGES, json=body), 400)
    assert error["type"] == "invalid_request_error"
    assert needle in error["message"]
    assert fake.requests() == []  # nothing went upstream


def test_the_sdk_raises_its_own_error_classes(gw):
    with anthropic.Anthropic(base_url=gw.url, api_key="gw-wrong-key-0123456789abcdef", max_retries=0) as bad:
        with pytest.raises(anthropic.AuthenticationError) as info:
            bad.messages.create(model="echo", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert info.value.body == {"type": "error", "error": {"type": "authentication_error", "message": "invalid API key"}}
    assert "gw-wrong-key" not in str(info.value.body)
    with anthropic.Anthropic(base_url=gw.url, api_key=ECHO_ONLY_KEY, max_retries=0) as limited:
        with pytest.raises(anthropic.PermissionDeniedError):
            limited.messages.create(model="gpt", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0) as ok:
        with pytest.raises(anthropic.NotFoundError) as missing:
            ok.messages.create(model="claude-nope", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["error"]["type"] == "not_found_error"


def test_missing_key_is_401_and_too_large_is_413_in_the_anthropic_envelope(gw, http):
    resp = httpx.post(gw.url + MESSAGES, json={"model": "echo", "messages": [{"role": "user", "content": "x"}]})
    assert error_of(resp, 401)["type"] == "authentication_error"
    big = {"model": "echo", "max_tokens": 5, "messages": [{"role": "user", "content": "x" * 70_000}]}
    assert error_of(http.post(MESSAGES, json=big), 413)["type"] == "request_too_large"


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_429_is_a_429_with_retry_after(http, fake, stream):
    fake.reset()
    resp = http.post(MESSAGES, json={"model": "gpt", "max_tokens": 5, "stream": stream,
                                     "messages": [{"role": "user", "content": directive(status=429, retry_after="0")}]})  # fmt: skip
    assert error_of(resp, 429)["type"] == "rate_limit_error"
    assert int(resp.headers["retry-after"]) >= 1
    assert len(fake.requests()) == 2  # no wait asked: retried once (routing.retries: 1)


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_500_is_a_502_and_an_upstream_400_keeps_its_status_and_message(http, stream):
    base = {"model": "gpt", "max_tokens": 5, "stream": stream}
    resp = http.post(MESSAGES, json={**base, "messages": [{"role": "user", "content": directive(status=500)}]})
    assert error_of(resp, 502)["type"] == "api_error"  # Anthropic's name for it
    text = directive(status=400, message="context too long for this model")
    error = error_of(http.post(MESSAGES, json={**base, "messages": [{"role": "user", "content": text}]}), 400)
    assert "context too long for this model" in error["message"]


def test_the_sdk_sees_an_upstream_failure_as_its_status_error(client):
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(
            model="gpt", max_tokens=5, messages=[{"role": "user", "content": directive(status=429, retry_after="0")}]
        )
    with pytest.raises(anthropic.InternalServerError) as info:
        client.messages.create(model="gpt", max_tokens=5, messages=[{"role": "user", "content": directive(status=503)}])
    assert info.value.status_code == 502


# ---------------------------------------------------------------- mid-stream


@pytest.mark.parametrize("fault", ["error_event", "reset_mid_stream", "garbage_mid_stream", "truncate", "stall_mid_stream"])
def test_a_failure_after_the_first_event_ends_the_stream_with_one_anthropic_error_event(http, fault):
    text = directive(fault=fault, after=2, chunks=6)
    resp, events = raw_stream(http, {"model": "gpt", "messages": [{"role": "user", "content": text}]})
    kinds = names(events)
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds.count("content_block_delta") == 2  # what came before the failure reached the client
    assert kinds[-1] == "error" and kinds.count("error") == 1
    assert "message_delta" not in kinds and "message_stop" not in kinds  # never a made-up end
    error = events[-1][1]
    assert set(error) == {"type", "error"} and set(error["error"]) == {"type", "message"}
    assert "provider 'up'" in error["error"]["message"]
    assert resp.text.endswith("\n\n") and "[DONE]" not in resp.text


def test_the_sdk_raises_on_a_mid_stream_error_event(client):
    text = directive(fault="error_event", after=1)
    with pytest.raises(anthropic.APIStatusError) as info:
        with client.messages.stream(model="gpt", max_tokens=50, messages=[{"role": "user", "content": text}]) as s:
            s.get_final_message()
    assert "fake mid-stream error" in str(info.value)


def test_a_client_leaving_mid_stream_cancels_the_upstream_request(gw, fake):
    before = fake.stats()
    text = directive(chunks=50, chunk_delay_s=0.2)
    body = {"model": "gpt", "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": text}]}
    with httpx.Client(base_url=gw.url, headers=HEADERS, timeout=10) as c:
        with c.stream("POST", MESSAGES, json=body) as resp:
            assert resp.status_code == 200
            seen = 0
            for line in resp.iter_lines():
                if line.startswith("event: content_block_delta"):
                    seen += 1
                    if seen >= 2:
                        break
    left = time.monotonic()
    after = fake.wait_for(lambda s: s["client_disconnects"] >= before["client_disconnects"] + 1, timeout=1.5)
    assert time.monotonic() - left < 1.5  # the stream would have run 10 s
    assert after["streams_completed"] == before["streams_completed"]


# ---------------------------------------------------------------- Anthropic backends: passed through


NATIVE_BODY: dict[str, Any] = {
    "model": "claude",
    "max_tokens": 200,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "temperature": 0.5,
    "stop_sequences": ["STOP"],
    "metadata": {"user_id": "u-1"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "tools": [WEATHER_TOOL],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should call the tool.", "signature": "c2lnbmF0dXJl"},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18°C", "is_error": False},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}},
            {"type": "text", "text": "thanks"},
        ]},
    ],
}  # fmt: skip


@pytest.mark.parametrize("stream", [False, True])
def test_an_anthropic_backend_gets_the_request_unchanged_but_for_the_model(http, ant, stream):
    ant.reset()
    body = {**NATIVE_BODY, "stream": stream} if stream else NATIVE_BODY
    resp = http.post(MESSAGES, json=body)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-gw-provider"] == "ant"
    sent = ant.requests()[-1]
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == ANTHROPIC_KEY
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert sent["body"] == {**body, "model": "claude-upstream", **({"stream": True} if stream else {})}


def test_an_anthropic_answer_is_passed_through(http, ant):
    text = directive(cache_read=40, cache_write=5, content="straight from the source")
    resp = http.post(MESSAGES, json={"model": "claude", "max_tokens": 50, "messages": [{"role": "user", "content": text}]})
    message = resp.json()
    assert message["model"] == "claude-upstream"  # Anthropic's own answer, unchanged
    assert message["content"] == [{"type": "text", "text": "straight from the source"}]
    assert message["usage"]["cache_read_input_tokens"] == 40
    assert message["usage"]["cache_creation_input_tokens"] == 5


def test_without_max_tokens_an_anthropic_target_gets_its_default(http, ant):
    ant.reset()
    resp = http.post(MESSAGES, json={"model": "claude", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200, resp.text
    assert ant.requests()[-1]["body"]["max_tokens"] == 777


def test_an_anthropic_stream_is_forwarded_event_for_event(client, http):
    text = directive(content="one two three", tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    body = {"model": "claude", "tools": [WEATHER_TOOL], "messages": [{"role": "user", "content": text}]}
    resp, events = raw_stream(http, body)
    assert names(events)[:2] == ["message_start", "content_block_start"]
    assert "ping" in names(events)  # Anthropic's own keep-alive, passed on
    assert names(events)[-2:] == ["message_delta", "message_stop"]
    assert events[0][1]["message"]["model"] == "claude-upstream"
    with client.messages.stream(max_tokens=100, **body) as stream:
        message = stream.get_final_message()
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[0].text == "one two three"
    assert (message.content[1].name, message.content[1].input) == ("get_weather", {"city": "Paris"})
    assert message.stop_reason == "tool_use"


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_backend_errors_are_mapped_in_the_anthropic_envelope(http, ant, stream):
    base = {"model": "claude", "max_tokens": 5, "stream": stream}
    ant.reset()
    resp = http.post(
        MESSAGES, json={**base, "messages": [{"role": "user", "content": directive(status=429, retry_after="0")}]}
    )
    assert error_of(resp, 429)["type"] == "rate_limit_error"
    assert int(resp.headers["retry-after"]) >= 1
    error_of(http.post(MESSAGES, json={**base, "messages": [{"role": "user", "content": directive(status=529)}]}), 502)
    # The fake checks the body as Anthropic does: its 400 and message come back.
    bad = {**base, "messages": [{"role": "user", "content": "x"}], "temperature": 1.5}
    error = error_of(http.post(MESSAGES, json=bad), 400)
    assert error["type"] == "invalid_request_error" and "temperature" in error["message"]


@pytest.mark.parametrize("fault", ["error_event", "reset_mid_stream", "garbage_mid_stream", "truncate"])
def test_an_anthropic_stream_failing_midway_ends_with_one_error_event(http, fault):
    text = directive(fault=fault, after=2, chunks=6)
    _, events = raw_stream(http, {"model": "claude", "messages": [{"role": "user", "content": text}]})
    kinds = names(events)
    assert kinds[0] == "message_start"
    assert kinds.count("content_block_delta") == 2
    assert kinds[-1] == "error" and kinds.count("error") == 1
    assert "message_stop" not in kinds
    assert "provider 'ant'" in events[-1][1]["error"]["message"]


# ---------------------------------------------------------------- mixed routes


@pytest.mark.parametrize("stream", [False, True])
def test_a_retry_from_an_anthropic_target_to_an_openai_one_converts_the_request(http, fake, stream):
    fake.reset()
    body = {"model": "dead-claude-then-gpt", "max_tokens": 50, "stream": stream, "system": "S",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]}  # fmt: skip
    resp = http.post(MESSAGES, json=body)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-gw-provider"] == "up"
    text = resp.json()["content"][0]["text"] if not stream else "".join(
        d["delta"]["text"] for n, d in sse_events(resp.text) if n == "content_block_delta"
    )
    assert text == "fake: hello"
    sent = fake.requests()[-1]["body"]
    assert sent["messages"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "hello"}]


@pytest.mark.parametrize("stream", [False, True])
def test_a_retry_from_an_openai_target_to_an_anthropic_one_sends_the_original_request(http, ant, stream):
    ant.reset()
    body = {"model": "dead-gpt-then-claude", "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]}  # fmt: skip
    resp = http.post(MESSAGES, json=body)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-gw-provider"] == "ant"
    assert ant.requests()[-1]["body"] == {**body, "model": "claude-upstream"}
