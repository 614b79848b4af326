"""The official openai SDK -> gw -> the fake Anthropic API (tests/fakes/anthropic_server.py);
and the anthropic SDK -> gw /v1/messages -> the same fake, passed through."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import APP_KEY, Gateway
from tests.fakes.anthropic_server import AnthropicFake
from tests.integration.sse import sse_data

pytestmark = pytest.mark.integration

ANTHROPIC_KEY = "sk-ant-fake-provider-key-0123456789abcdef"
WRONG_KEY = "sk-ant-wrong-provider-key-0123456789abcdef"
AUTH = {"authorization": f"Bearer {APP_KEY}"}
CHAT = "/v1/chat/completions"


def config(fake: AnthropicFake) -> str:
    base = fake.anthropic_base_url
    return f"""
auth:
  keys:
    - name: app
      key: {APP_KEY}
      models: ["*"]
providers:
  claude:
    type: anthropic
    base_url: {base}
    api_key: {ANTHROPIC_KEY}
    first_byte_timeout_s: 2
    idle_timeout_s: 2
    timeout_s: 5
    headers: {{anthropic-beta: fake-beta-2025-01-01}}
  claude-dated:
    type: anthropic
    base_url: {base}
    api_key: {ANTHROPIC_KEY}
    api_version: 2024-02-02
  claude-badkey:
    type: anthropic
    base_url: {base}
    api_key: {WRONG_KEY}
models:
  claude:
    targets: [{{provider: claude, model: claude-up, default_max_tokens: 64000}}]
  claude-plain:
    targets: [{{provider: claude, model: claude-plain-up}}]
  claude-dated:
    targets: [{{provider: claude-dated, model: claude-dated-up}}]
  claude-badkey:
    targets: [{{provider: claude-badkey, model: claude-up}}]
routing:
  retries: 1
  # These tests fail one target on purpose, over and over: keep its breaker shut.
  circuit_breaker: {{failures: 1000, cooldown_s: 1}}
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[AnthropicFake]:
    with AnthropicFake(api_key=ANTHROPIC_KEY) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gw(fake: AnthropicFake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    path: Path = tmp_path_factory.mktemp("gw-anthropic") / "config.yaml"
    path.write_text(config(fake))
    gateway = Gateway(path)
    yield gateway
    gateway.close()


@pytest.fixture
def client(gw: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=APP_KEY, max_retries=0, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def http(gw: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=10) as c:
        yield c


def sent(fake: AnthropicFake) -> dict:
    """What the fake Anthropic received last."""
    return fake.requests()[-1]


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def fake_says(rest: str = "", **directive: Any) -> list[dict]:
    return ask(f"FAKE {json.dumps(directive)} {rest}".strip())


class Stream:
    """A streamed answer read raw: the chunks, errors, and the SSE framing."""

    def __init__(self, resp: httpx.Response) -> None:
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("text/event-stream")
        self.raw = resp.text
        self.events = sse_data(resp.text)
        assert self.events[-1] == "[DONE]" and self.events.count("[DONE]") == 1, self.raw[-300:]
        assert self.raw.endswith("data: [DONE]\n\n")
        objects = [json.loads(e) for e in self.events[:-1]]
        self.errors = [o["error"] for o in objects if "error" in o]
        self.chunks = [o for o in objects if "error" not in o]

    @property
    def text(self) -> str:
        return "".join(c["choices"][0]["delta"].get("content") or "" for c in self.chunks if c["choices"])

    @property
    def finishes(self) -> list[str]:
        return [c["choices"][0]["finish_reason"] for c in self.chunks if c["choices"] and c["choices"][0]["finish_reason"]]

    @property
    def usage_chunks(self) -> list[dict]:
        return [c for c in self.chunks if c.get("usage")]

    def tool_calls(self) -> list[dict]:
        return [tc for c in self.chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls") or ()]


def stream(http: httpx.Client, body: dict) -> Stream:
    return Stream(http.post(CHAT, json={"model": "claude", "stream": True, **body}))


# ---------------------------------------------------------------- plain answers


def test_plain_answer_with_usage_and_the_request_anthropic_got(client, fake):
    fake.reset()
    answer = client.chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "be brief"}, *ask("hello big world")],
        temperature=1.6,
        stop=["END"],
        user="user-7",
        presence_penalty=0.5,
        seed=3,
    )
    assert answer.choices[0].message.content == "fake: hello big world"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.id.startswith("chatcmpl-msg_01")
    assert answer.model == "claude-up" and answer.object == "chat.completion"
    assert answer.usage.prompt_tokens == 5 and answer.usage.completion_tokens == 4 and answer.usage.total_tokens == 9
    request = sent(fake)
    assert request["path"] == "/v1/messages" and request["method"] == "POST"
    headers = request["headers"]
    assert headers["x-api-key"] == ANTHROPIC_KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"
    assert headers["anthropic-beta"] == "fake-beta-2025-01-01"  # the provider's extra headers
    assert "authorization" not in headers
    assert request["body"] == {
        "model": "claude-up",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello big world"}]}],
        "system": "be brief",
        "max_tokens": 64000,
        "temperature": 1,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-7"},
    }


def test_the_providers_api_version_is_sent(client, fake):
    client.chat.completions.create(model="claude-dated", messages=ask("hi"))
    assert sent(fake)["headers"]["anthropic-version"] == "2024-02-02"
    assert sent(fake)["body"]["model"] == "claude-dated-up"


@pytest.mark.parametrize(
    ("model", "extra", "expected"),
    [
        ("claude", {}, 64000),  # the target's default_max_tokens
        ("claude-plain", {}, 4096),  # none configured: ANTHROPIC_DEFAULT_MAX_TOKENS
        ("claude", {"max_tokens": 10}, 10),
        ("claude-plain", {"max_completion_tokens": 20, "max_tokens": 10}, 20),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
def test_max_tokens_default_or_explicit(http, fake, model, extra, expected, streamed):
    resp = http.post(CHAT, json={"model": model, "messages": ask("hi"), "stream": streamed, **extra})
    assert resp.status_code == 200, resp.text
    body = sent(fake)["body"]
    assert body["max_tokens"] == expected
    assert body.get("stream", False) is streamed


def test_a_max_tokens_cut_is_length_and_a_stop_sequence_is_stop(client):
    cut = client.chat.completions.create(model="claude", messages=ask("a b c d e"), max_tokens=2)
    assert cut.choices[0].finish_reason == "length" and cut.choices[0].message.content == "fake: a"
    stopped = client.chat.completions.create(model="claude", messages=ask("a b STOP c"), stop="STOP")
    assert stopped.choices[0].finish_reason == "stop" and stopped.choices[0].message.content == "fake: a b "


def test_cache_tokens_count_as_prompt_tokens(client):
    messages = fake_says("x y", cache_read=100, cache_write=20)
    answer = client.chat.completions.create(model="claude", messages=messages)
    words = len(messages[0]["content"].split())  # the fake's uncached input tokens
    assert answer.usage.prompt_tokens == words + 100 + 20
    assert answer.usage.prompt_tokens_details.cached_tokens == 100
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_a_refusal_is_content_filter_and_thinking_is_not_content(client):
    answer = client.chat.completions.create(model="claude", messages=fake_says("no", stop_reason="refusal", thinking="secret plan"))
    assert answer.choices[0].finish_reason == "content_filter"
    assert answer.choices[0].message.content == "fake: no"


# ---------------------------------------------------------------- streams


def test_stream_role_first_content_one_finish_no_usage_chunk_then_done(http):
    s = stream(http, {"messages": ask("one two three")})
    assert s.chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert s.text == "fake: one two three"
    assert s.finishes == ["stop"]
    assert s.usage_chunks == [] and s.errors == []
    assert len({c["id"] for c in s.chunks}) == 1 and s.chunks[0]["id"].startswith("chatcmpl-msg_")


def test_stream_with_include_usage_ends_with_exactly_one_usage_chunk(client):
    messages = fake_says("a b", cache_read=7)
    chunks = list(client.chat.completions.create(
        model="claude", messages=messages, stream=True, stream_options={"include_usage": True}
    ))  # fmt: skip
    usage = [c for c in chunks if c.usage is not None]
    assert len(usage) == 1 and chunks[-1] is usage[0] and usage[0].choices == []
    assert usage[0].usage.prompt_tokens == len(messages[0]["content"].split()) + 7 and usage[0].usage.prompt_tokens_details.cached_tokens == 7
    assert usage[0].usage.completion_tokens == 3
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


def test_tokens_are_counted_for_a_stream_that_did_not_ask_for_usage(http, gw):
    resp = http.post(CHAT, headers={"x-request-id": "anthropic-usage-probe-1"},
                     json={"model": "claude", "stream": True, "messages": ask("count these words")})
    Stream(resp)
    line = log_line(gw, "anthropic-usage-probe-1")
    assert line["prompt_tokens"] == 3 and line["completion_tokens"] == 4


@pytest.mark.parametrize("split", [{"split": "bytes"}, {"split": "random", "seed": 3}, {"split": "random", "seed": 11}])
def test_streams_split_into_tiny_writes_arrive_intact(http, split):
    s = stream(http, {"messages": fake_says("", content="héllo wörld 你好 🎉 end", **split)})
    assert s.text == "héllo wörld 你好 🎉 end"
    assert s.finishes == ["stop"] and s.errors == []


def test_a_stream_with_thinking_first_has_the_reasoning_then_the_text(http):
    s = stream(http, {"messages": fake_says("visible", thinking="hidden thoughts")})
    assert s.text == "fake: visible"
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content", "") for c in s.chunks if c["choices"])
    assert reasoning == "hidden thoughts"


# ---------------------------------------------------------------- tools


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
NOW = {"type": "function", "function": {"name": "now"}}
TWO_CALLS = [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "now"}]


def test_tools_tool_choice_and_parallel_reach_anthropic_and_calls_come_back(client, fake):
    answer = client.chat.completions.create(
        model="claude", messages=fake_says(tool_calls=TWO_CALLS), tools=[WEATHER, NOW],
        tool_choice="required", parallel_tool_calls=False,
    )  # fmt: skip
    body = sent(fake)["body"]
    assert body["tools"] == [
        {"name": "get_weather", "description": "The weather of a city", "input_schema": WEATHER["function"]["parameters"]},
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    message = answer.choices[0].message
    assert answer.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    calls = message.tool_calls
    assert [(c.function.name, c.function.arguments) for c in calls] == [("get_weather", '{"city":"Paris"}'), ("now", "{}")]
    assert all(c.id.startswith("toolu_") for c in calls) and calls[0].id != calls[1].id


def test_a_named_tool_choice_is_a_tool_choice_of_type_tool(client, fake):
    client.chat.completions.create(model="claude", messages=ask("x"), tools=[WEATHER],
                                   tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert sent(fake)["body"]["tool_choice"] == {"type": "tool", "name": "get_weather"}


def test_streamed_tool_calls_have_distinct_stable_indexes_and_ids_and_whole_arguments(http):
    calls = [*TWO_CALLS, {"name": "get_weather", "arguments": {"city": "Oslo"}}]
    s = stream(http, {"messages": fake_says("checking", tool_calls=calls), "tools": [WEATHER, NOW]})
    deltas = s.tool_calls()
    firsts = [d for d in deltas if "id" in d]
    assert [(d["index"], d["function"]["name"], d["function"]["arguments"], d["type"]) for d in firsts] == [
        (0, "get_weather", "", "function"), (1, "now", "", "function"), (2, "get_weather", "", "function")]
    assert len({d["id"] for d in firsts}) == 3
    args: dict[int, str] = {}
    for d in deltas:
        assert set(d) <= {"index", "id", "type", "function"}
        args[d["index"]] = args.get(d["index"], "") + d["function"]["arguments"]
    assert {i: json.loads(a) for i, a in args.items()} == {0: {"city": "Paris"}, 1: {}, 2: {"city": "Oslo"}}
    assert s.text == "fake: checking" and s.finishes == ["tool_calls"]


def test_a_tool_call_whose_input_never_streams_gets_empty_arguments(http):
    s = stream(http, {"messages": fake_says(tool_calls=[{"name": "now"}], no_json_delta=True), "tools": [NOW]})
    assert [d["function"]["arguments"] for d in s.tool_calls()] == ["", "{}"]


def test_the_openai_sdk_assembles_streamed_tool_calls(client):
    calls: dict[int, dict] = {}
    for chunk in client.chat.completions.create(
        model="claude", messages=fake_says(tool_calls=TWO_CALLS), tools=[WEATHER, NOW], stream=True
    ):
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(tc.index, {"id": tc.id, "name": tc.function.name, "arguments": ""})
            entry["arguments"] += tc.function.arguments or ""
    assert [(c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())] == [
        ("get_weather", {"city": "Paris"}), ("now", {})]


def test_tool_results_go_back_as_tool_result_blocks_in_one_user_turn(client, fake):
    messages = [
        *ask("weather and time?"),
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "toolu_A", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "toolu_B", "type": "function", "function": {"name": "now", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "toolu_A", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_B", "content": "noon"},
    ]  # fmt: skip
    answer = client.chat.completions.create(model="claude", messages=messages, tools=[WEATHER, NOW])
    assert answer.choices[0].message.content == "fake: toolu_A=18C toolu_B=noon"
    turns = sent(fake)["body"]["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [
        {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_B", "name": "now", "input": {}},
    ]
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_A", "content": "18C"},
        {"type": "tool_result", "tool_use_id": "toolu_B", "content": "noon"},
    ]


def test_unparseable_tool_call_arguments_are_a_400_naming_the_field(http, fake):
    fake.reset()
    resp = http.post(CHAT, json={"model": "claude", "messages": [
        *ask("x"),
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "1"},
    ]})  # fmt: skip
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["param"] == "messages[1].tool_calls[0].function.arguments" and "not valid JSON" in error["message"]
    assert fake.requests() == []  # refused before any upstream call


def test_n_above_one_is_a_400_streamed_or_not(http, fake):
    fake.reset()
    for streamed in (False, True):
        resp = http.post(CHAT, json={"model": "claude", "messages": ask("x"), "n": 2, "stream": streamed})
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "n"
    assert fake.requests() == []


# ---------------------------------------------------------------- images


def test_images_go_as_base64_and_url_sources(client, fake):
    client.chat.completions.create(model="claude", messages=[{"role": "user", "content": [
        {"type": "text", "text": "compare"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
    ]}])  # fmt: skip
    assert sent(fake)["body"]["messages"][0]["content"] == [
        {"type": "text", "text": "compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_an_image_anthropic_cannot_take_is_a_400(http):
    resp = http.post(CHAT, json={"model": "claude", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "ftp://example.com/cat.jpg"}}]}]})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "messages[0].content[0].image_url.url"


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "expected", "attempts"),
    [(400, 400, 1), (404, 404, 1), (413, 413, 1), (429, 429, 2), (500, 502, 2), (529, 502, 2)],
)
def test_anthropic_error_statuses_map_per_spec(http, fake, status, expected, attempts):
    fake.reset()
    # A 429 whose Retry-After is 0 is retried at once (with a wait, see test_resilience).
    extra = {"retry_after": "0"} if status == 429 else {}
    resp = http.post(
        CHAT, json={"model": "claude", "messages": fake_says(status=status, message=f"upstream says {status}", **extra)}
    )
    assert resp.status_code == expected, resp.text
    error = resp.json()["error"]
    if status in (400, 404, 413):
        assert f"upstream says {status}" in error["message"]
        assert error["type"] == {400: "invalid_request_error", 404: "not_found_error", 413: "request_too_large"}[status]
    if status == 429:
        assert int(resp.headers["retry-after"]) >= 1
    # retries: 1 in the config — 429, 500 and 529 (overloaded) are retried, the rest not
    assert len(fake.requests()) == attempts


@pytest.mark.parametrize("status", [400, 529])
def test_error_statuses_on_streams_are_plain_http_errors(http, status):
    resp = http.post(CHAT, json={"model": "claude", "stream": True, "messages": fake_says(status=status)})
    assert resp.status_code == (400 if status == 400 else 502)
    assert resp.headers["content-type"].startswith("application/json")


def test_a_wrong_provider_key_is_a_502_without_anthropics_text_or_the_key(http, gw):
    resp = http.post(CHAT, json={"model": "claude-badkey", "messages": ask("hi")})
    assert resp.status_code == 502
    assert "x-api-key" not in resp.text and WRONG_KEY not in resp.text
    assert "credentials" in resp.json()["error"]["message"]


@pytest.mark.parametrize("fault", ["error_event", "truncate", "garbage_mid_stream", "reset_mid_stream"])
def test_a_fault_after_the_first_bytes_is_one_error_event_then_done_never_a_finish(http, fault):
    s = stream(http, {"messages": fake_says("a b c d e", fault=fault, after=2)})
    assert len(s.errors) == 1 and s.finishes == []
    assert s.text.startswith("fake: a")
    if fault == "error_event":
        assert "Overloaded" in s.errors[0]["message"]


def test_an_error_event_right_after_message_start_is_retried_before_anything_is_sent(http, fake):
    fake.reset()
    resp = http.post(CHAT, json={"model": "claude", "stream": True,
                                 "messages": fake_says("a b", fault="error_event", at_start=True)})
    # nothing had gone out: the one retry (routing.retries: 1) hit the same fault, then a plain 502
    assert resp.status_code == 502 and resp.headers["content-type"].startswith("application/json")
    assert "Overloaded" in resp.json()["error"]["message"]
    assert len(fake.requests()) == 2


def test_the_sdk_raises_on_an_anthropic_error_after_the_stream_started(client):
    with pytest.raises(openai.APIError) as info:
        for _ in client.chat.completions.create(model="claude", messages=fake_says("a b c", fault="error_event"), stream=True):
            pass
    assert "Overloaded" in str(info.value)


def test_a_hang_before_the_headers_is_a_504(http):
    resp = http.post(CHAT, json={"model": "claude-plain", "messages": fake_says(fault="hang")})
    assert resp.status_code == 504


def test_a_garbage_whole_answer_is_a_502(http):
    resp = http.post(CHAT, json={"model": "claude", "messages": fake_says(fault="garbage_mid_stream")})
    assert resp.status_code == 502 and "not JSON" in resp.json()["error"]["message"]


def test_an_anthropic_error_body_with_a_200_is_a_502(http):
    resp = http.post(CHAT, json={"model": "claude", "messages": fake_says(fault="error_event")})
    assert resp.status_code == 502 and "Overloaded" in resp.json()["error"]["message"]


# ---------------------------------------------------------------- other endpoints


def test_legacy_completions_are_served_by_anthropic_as_chat(client, fake):
    answer = client.completions.create(model="claude", prompt="say this", max_tokens=50)
    assert answer.choices[0].text == "fake: say this"
    assert sent(fake)["body"]["max_tokens"] == 50


def test_embeddings_are_a_400_unsupported(http):
    resp = http.post("/v1/embeddings", json={"model": "claude", "input": "x"})
    assert resp.status_code == 400 and "embeddings" in resp.json()["error"]["message"]


# ---------------------------------------------------------------- /v1/messages, passed through


@pytest.fixture
def claude(gw: Gateway) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gw.url, api_key=APP_KEY, max_retries=0) as c:
        yield c


def test_messages_to_an_anthropic_backend_pass_through_with_the_model_rewritten(claude, fake, gw):
    message = claude.messages.create(
        model="claude", max_tokens=50, system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "hello there"}], extra_headers={"x-request-id": "anthropic-native-1"},
    )  # fmt: skip
    assert message.id.startswith("msg_01") and message.content[0].text == "fake: hello there"
    assert message.model == "claude-up"  # the upstream's answer, unchanged
    body = sent(fake)["body"]
    assert body["model"] == "claude-up" and body["max_tokens"] == 50
    assert body["system"] == [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}]
    assert sent(fake)["headers"]["x-api-key"] == ANTHROPIC_KEY
    line = log_line(gw, "anthropic-native-1")
    assert line["prompt_tokens"] == 4 and line["completion_tokens"] == 3


def test_messages_without_max_tokens_get_the_targets_default(http, fake):
    for model, expected in (("claude", 64000), ("claude-plain", 4096)):
        resp = http.post("/v1/messages", json={"model": model, "messages": ask("hi")})
        assert resp.status_code == 200, resp.text
        assert sent(fake)["body"]["max_tokens"] == expected


def test_messages_stream_forwards_anthropics_events_unchanged(http, fake, gw):
    body = {"model": "claude", "max_tokens": 50, "stream": True, "messages": fake_says("x y", cache_read=9, tool_calls=[{"name": "now"}])}
    through = http.post("/v1/messages", json=body, headers={"x-request-id": "anthropic-native-2"})
    assert through.status_code == 200 and through.headers["content-type"].startswith("text/event-stream")
    direct = httpx.post(fake.anthropic_base_url + "/messages", json={**body, "model": "claude-up"},
                        headers={"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"})
    # the same bytes but for the ids the fake makes per request

    def scrub(text: str) -> str:
        return re.sub(r"(msg|toolu)_01\w+", "ID", text)

    assert scrub(through.text) == scrub(direct.text)
    assert through.text.startswith("event: message_start\n")
    line = log_line(gw, "anthropic-native-2")
    words = len(body["messages"][0]["content"].split())
    assert line["prompt_tokens"] == words + 9 and line["completion_tokens"] == 4  # "fake: x y" + one tool call


def test_messages_stream_with_the_sdk(claude):
    with claude.messages.stream(model="claude", max_tokens=50, messages=[{"role": "user", "content": "one two"}]) as s:
        final = s.get_final_message()
    assert final.content[0].text == "fake: one two" and final.stop_reason == "end_turn"


def test_messages_stream_error_event_becomes_one_anthropic_error_event(http):
    resp = http.post("/v1/messages", json={"model": "claude", "max_tokens": 50, "stream": True,
                                            "messages": fake_says("a b c", fault="error_event", after=1)})
    assert resp.status_code == 200
    names = re.findall(r"^event: (\w+)$", resp.text, flags=re.MULTILINE)
    assert names.count("error") == 1 and names[-1] == "error" and "message_stop" not in names
    assert "Overloaded" in resp.text


def test_messages_stream_error_right_after_message_start_is_retried_then_a_plain_error(http, fake):
    fake.reset()
    resp = http.post("/v1/messages", json={"model": "claude", "max_tokens": 50, "stream": True,
                                            "messages": fake_says("a", fault="error_event", at_start=True)})
    assert resp.status_code == 502 and resp.json()["type"] == "error"
    assert len(fake.requests()) == 2


def test_messages_errors_come_in_the_anthropic_envelope(claude):
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.messages.create(model="claude", max_tokens=10, messages=fake_says(status=400, message="bad thing"))
    assert info.value.body["type"] == "error" and "bad thing" in info.value.body["error"]["message"]


# ---------------------------------------------------------------- secrets


def test_no_provider_key_in_any_answer_or_log_line(http, gw):
    answers = [
        http.post(CHAT, json={"model": "claude-badkey", "messages": ask("hi")}),
        http.post(CHAT, json={"model": "claude", "messages": fake_says(status=401)}),
        http.post(CHAT, json={"model": "claude", "messages": fake_says(status=400, message=f"echo {ANTHROPIC_KEY}")}),
        http.post(CHAT, json={"model": "claude", "stream": True, "messages": fake_says("a b", fault="error_event")}),
        http.post("/v1/messages", json={"model": "claude-badkey", "max_tokens": 5, "messages": ask("hi")}),
        http.post(CHAT, json={"model": "claude", "messages": ask("fine")}, headers={"x-request-id": "anthropic-last-1"}),
    ]
    for resp in answers:
        text = resp.text + "".join(f"{k}: {v}\n" for k, v in resp.headers.items())
        assert ANTHROPIC_KEY not in text and WRONG_KEY not in text
    log_line(gw, "anthropic-last-1")  # every line before it is out too
    assert ANTHROPIC_KEY not in gw.output() and WRONG_KEY not in gw.output()


# ---------------------------------------------------------------- helpers


def log_line(gw: Gateway, request_id: str, timeout: float = 5.0) -> dict:
    """The JSON log line of one request (lines are flushed every 0.2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        for line in gw.output().splitlines():
            if request_id in line and line.startswith("{"):
                entry = json.loads(line)
                if entry.get("request_id") == request_id:
                    return entry
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line for {request_id}")
        time.sleep(0.05)


def test_reasoning_effort_reaches_anthropic_as_extended_thinking(client, fake):
    answer = client.chat.completions.create(
        model="claude", messages=fake_says("ok", thinking="weighing it"), reasoning_effort="medium",
        max_tokens=16000, temperature=0.2,
    )  # fmt: skip
    body = sent(fake)["body"]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert "temperature" not in body  # Anthropic refuses it with thinking on
    assert answer.choices[0].message.reasoning_content == "weighing it"  # type: ignore[attr-defined]
    assert answer.usage is not None
