"""The fake Anthropic upstream, checked with the official anthropic SDK and raw httpx."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.fakes.anthropic_server import AnthropicFake

KEY = "sk-ant-fake-anthropic-key-0123456789"
MODEL = "claude-haiku-4-5"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
WEATHER = {
    "name": "get_weather",
    "description": "The weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def fake() -> Iterator[AnthropicFake]:
    with AnthropicFake(api_key=KEY) as f:
        yield f


@pytest.fixture(scope="module")
def client(fake: AnthropicFake) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fake.url, api_key=KEY, max_retries=0) as c:
        yield c


@pytest.fixture
def http(fake: AnthropicFake) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.anthropic_base_url, headers=HEADERS, timeout=5) as c:
        yield c


def directive(text: str = "", **fake: Any) -> str:
    return ("FAKE " + json.dumps(fake) + (" " + text if text else "")).strip()


def events(text: str) -> list[tuple[str | None, dict]]:
    """(event name, data) of each event, by the SSE rules."""
    out: list[tuple[str | None, dict]] = []
    name: str | None = None
    data: list[str] = []
    for line in re.split(r"\r\n|\r|\n", text):
        if not line:
            if data:
                out.append((name, json.loads("\n".join(data))))
            name, data = None, []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
    return out


def body(text: str, **extra: Any) -> dict:
    return {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": text}], **extra}


# ------------------------------------------------------------------ the SDK


def test_sdk_create_answers_with_the_documented_message_shape(client, fake):
    fake.reset()
    message = client.messages.create(
        model=MODEL, max_tokens=100, system="be brief", messages=[{"role": "user", "content": "hello big world"}]
    )
    assert message.id.startswith("msg_")
    assert message.type == "message" and message.role == "assistant" and message.model == MODEL
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "fake: hello big world"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens == 5  # "be brief" + "hello big world"
    assert message.usage.output_tokens == 4
    assert message.usage.cache_read_input_tokens == 0 and message.usage.cache_creation_input_tokens == 0
    sent = fake.requests()[-1]
    assert sent["path"] == "/v1/messages"
    # SDK 2.x sends the key as a bearer token and its own API version.
    assert sent["headers"]["authorization"] == f"Bearer {KEY}"
    assert sent["headers"]["anthropic-version"]


def test_sdk_stream_accumulates_the_same_message(client):
    with client.messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "one two three"}]
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert texts == ["fake: ", "one ", "two ", "three"]
    assert final.content[0].text == "fake: one two three"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4 and final.usage.input_tokens == 3


def test_sdk_tool_use_with_and_without_arguments(client):
    text = directive(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "now"}])
    message = client.messages.create(
        model=MODEL, max_tokens=100, tools=[WEATHER], messages=[{"role": "user", "content": text}]
    )
    assert message.stop_reason == "tool_use"
    assert [(b.type, b.name, b.input) for b in message.content] == [
        ("tool_use", "get_weather", {"city": "Paris"}),
        ("tool_use", "now", {}),
    ]
    assert message.content[0].id.startswith("toolu_") and message.content[0].id != message.content[1].id
    with client.messages.stream(
        model=MODEL, max_tokens=100, tools=[WEATHER], messages=[{"role": "user", "content": text}]
    ) as stream:
        final = stream.get_final_message()
    assert [(b.name, b.input) for b in final.content] == [("get_weather", {"city": "Paris"}), ("now", {})]


def test_sdk_tool_result_round_trip_is_answered(client):
    message = client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]},
        ],
    )
    assert message.content[0].text == "fake: toolu_1=18C"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (403, anthropic.PermissionDeniedError),
        (404, anthropic.NotFoundError),
        (413, anthropic.APIStatusError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.OverloadedError),
    ],
)
def test_sdk_error_statuses_raise_the_sdk_exception_with_anthropics_body(client, status, error):
    with pytest.raises(error) as info:
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": directive(status=status)}])
    assert info.value.status_code == status
    body = info.value.body
    assert body["type"] == "error" and body["error"]["type"] in (
        "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
        "request_too_large", "rate_limit_error", "api_error", "overloaded_error",
    )  # fmt: skip
    assert info.value.response.headers["request-id"].startswith("req_")
    if status == 529:
        assert body["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_sdk_stream_error_event_raises(client):
    with pytest.raises(anthropic.APIStatusError) as info:
        with client.messages.stream(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": directive("a b c d", fault="error_event", after=1)}]
        ) as stream:
            stream.get_final_message()
    assert "Overloaded" in str(info.value)


def test_sdk_wrong_key_is_an_authentication_error(fake):
    with anthropic.Anthropic(base_url=fake.url, api_key="sk-ant-wrong-0123456789", max_retries=0) as bad:
        with pytest.raises(anthropic.AuthenticationError) as info:
            bad.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}


# ------------------------------------------------------------------ the raw wire


def test_raw_stream_is_the_documented_event_sequence(http):
    resp = http.post("/messages", json=body("one two", stream=True))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert resp.headers["request-id"].startswith("req_")
    assert resp.text.startswith("event: message_start\ndata: {")
    got = events(resp.text)
    assert [name for name, _ in got] == [
        "message_start", "content_block_start", "ping",
        "content_block_delta", "content_block_delta", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip
    assert all(name == data["type"] for name, data in got)
    start = got[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["input_tokens"] == 2
    assert got[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 3},
    }


def test_raw_tool_stream_sends_an_empty_fragment_first_and_nothing_more_without_arguments(http):
    text = directive(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "now"}])
    got = events(http.post("/messages", json=body(text, stream=True)).text)
    deltas = [(d["index"], d["delta"]["partial_json"]) for n, d in got if n == "content_block_delta"]
    assert deltas[0] == (0, "") and "".join(p for i, p in deltas if i == 0) == '{"city":"Paris"}'
    assert [p for i, p in deltas if i == 1] == [""]
    assert [d["content_block"]["type"] for n, d in got if n == "content_block_start"] == ["tool_use", "tool_use"]


def test_cache_tokens_thinking_and_stop_reason_override(http):
    text = directive("x", cache_read=100, cache_write=20, thinking="hmm let me see", stop_reason="refusal")
    answer = http.post("/messages", json=body(text)).json()
    assert answer["usage"]["cache_read_input_tokens"] == 100
    assert answer["usage"]["cache_creation_input_tokens"] == 20
    assert [b["type"] for b in answer["content"]] == ["thinking", "text"]
    assert answer["stop_reason"] == "refusal"


def test_max_tokens_and_stop_sequences_cut_the_answer(http):
    cut = http.post("/messages", json={**body("a b c d e"), "max_tokens": 2}).json()
    assert cut["content"][0]["text"] == "fake: a" and cut["stop_reason"] == "max_tokens"
    stopped = http.post("/messages", json=body("a b STOP c", stop_sequences=["STOP"])).json()
    assert stopped["content"][0]["text"] == "fake: a b " and stopped["stop_reason"] == "stop_sequence"
    assert stopped["stop_sequence"] == "STOP"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda b: b.pop("max_tokens"), "max_tokens: Field required"),
        (lambda b: b.update(presence_penalty=0.5), "presence_penalty: Extra inputs are not permitted"),
        (lambda b: b.update(temperature=1.5), "temperature"),
        (lambda b: b["messages"].append({"role": "system", "content": "x"}), "messages.1.role"),
        (lambda b: b.update(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]), "non-empty"),
        (lambda b: b.update(messages=[{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_x", "content": "1"}]}]), "unexpected `tool_use_id`"),
        (lambda b: b.update(messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "text", "text": "x"},
                                         {"type": "tool_result", "tool_use_id": "t1"}]}]), "must come first"),
        (lambda b: b.update(tools=[{"name": "f", "input_schema": {"properties": {}}}]), "input_schema.type"),
        (lambda b: b.update(tool_choice={"type": "auto"}), "tool_choice"),
    ],
)
def test_requests_anthropic_refuses_are_400_invalid_request_errors(http, change, needle):
    b = body("hi")
    change(b)
    resp = http.post("/messages", json=b)
    assert resp.status_code == 400
    error = resp.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert needle in error["error"]["message"]
    assert error["request_id"] == resp.headers["request-id"]


def test_missing_version_header_and_key_are_refused(fake):
    no_version = httpx.post(fake.anthropic_base_url + "/messages", headers={"x-api-key": KEY}, json=body("hi"))
    assert no_version.status_code == 400
    assert no_version.json()["error"] == {"type": "invalid_request_error", "message": "anthropic-version: header is required"}
    no_key = httpx.post(fake.anthropic_base_url + "/messages", headers={"anthropic-version": "2023-06-01"}, json=body("hi"))
    assert no_key.status_code == 401
    assert no_key.json()["error"] == {"type": "authentication_error", "message": "x-api-key header is required"}


def test_split_bytes_stream_is_the_same_stream(http):
    plain = events(http.post("/messages", json=body(directive("héllo wörld"), stream=True)).text)
    split = events(http.post("/messages", json=body(directive("héllo wörld", split="bytes"), stream=True)).text)

    def strip(evs):
        return [(n, {k: v for k, v in d.items() if k != "message"}) for n, d in evs]

    assert strip(split) == strip(plain)
    assert "".join(d["delta"]["text"] for n, d in split if n == "content_block_delta") == "fake: héllo wörld"


def test_error_event_and_truncate_faults(http):
    err = events(http.post("/messages", json=body(directive("a b c d", fault="error_event", after=1), stream=True)).text)
    assert [n for n, _ in err][-1] == "error"
    assert err[-1][1] == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert sum(n == "content_block_delta" for n, _ in err) == 1
    cut = events(http.post("/messages", json=body(directive("a b c d", fault="truncate"), stream=True)).text)
    assert "message_stop" not in [n for n, _ in cut] and "message_delta" not in [n for n, _ in cut]


def test_an_error_event_at_start_comes_right_after_message_start(http):
    got = events(http.post("/messages", json=body(directive("a b", fault="error_event", at_start=True), stream=True)).text)
    assert [n for n, _ in got] == ["message_start", "error"]


# ------------------------------------------------------------------ models list and the mode


@pytest.fixture
def mode(fake: AnthropicFake) -> Iterator[AnthropicFake]:
    """The fake, its mode cleared afterwards whatever the test did."""
    yield fake
    fake.clear_mode()


def test_sdk_lists_models_in_anthropics_shape(client, http):
    page = client.models.list()
    ids = [m.id for m in page.data]
    assert ids and all(m.type == "model" and m.display_name and m.created_at for m in page.data)
    assert page.has_more is False and page.first_id == ids[0] and page.last_id == ids[-1]
    assert [m.id for m in client.models.list()] == ids  # auto-paging stops
    assert client.models.retrieve(ids[1]).display_name == page.data[1].display_name
    raw = http.get("/models", params={"limit": 1}).json()
    assert set(raw) == {"data", "has_more", "first_id", "last_id"}
    assert [m["id"] for m in raw["data"]] == ids[:1] and raw["has_more"] is True
    nxt = http.get("/models", params={"limit": 5, "after_id": ids[0]}).json()
    assert [m["id"] for m in nxt["data"]] == ids[1:] and nxt["has_more"] is False


def test_models_list_needs_the_key(fake):
    with anthropic.Anthropic(base_url=fake.url, api_key="sk-ant-wrong", max_retries=0) as bad:
        with pytest.raises(anthropic.AuthenticationError):
            bad.models.list()


def test_mode_503_fails_messages_and_the_models_probe_with_anthropics_error(mode, client, http):
    mode.set_mode(status=503, message="down for a test")
    for r in (http.post("/messages", json=body("hi")), http.get("/models")):
        assert r.status_code == 503
        err = r.json()
        assert err["type"] == "error" and err["error"] == {"type": "api_error", "message": "down for a test"}
        assert err["request_id"] == r.headers["request-id"]
    with pytest.raises(anthropic.InternalServerError):
        client.models.list()


def test_mode_times_fails_exactly_that_many_requests(mode, http):
    mode.reset()
    mode.set_mode(status=529, times=2)
    codes = [http.post("/messages", json=body("hi")).status_code, http.get("/models").status_code]
    codes += [http.post("/messages", json=body("hi", stream=True)).status_code, http.get("/models").status_code]
    assert codes == [529, 529, 200, 200]
    assert mode.mode() == {} and mode.stats()["requests"] == 4


def test_a_requests_own_directive_beats_the_mode_and_reset_clears_it(mode, http):
    mode.set_mode(status=503)
    own = http.post("/messages", json=body(directive("x", content="mine")))
    assert own.status_code == 200 and own.json()["content"][0]["text"] == "mine"
    assert http.post("/messages", json=body("plain")).status_code == 503
    mode.reset()
    assert mode.mode() == {}
    assert http.post("/messages", json=body("plain")).status_code == 200


def test_mode_429_carries_the_given_retry_after(mode, http):
    mode.set_mode(status=429, retry_after="2")
    for r in (http.post("/messages", json=body("hi")), http.get("/models")):
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        assert r.json()["error"]["type"] == "rate_limit_error"
    mode.clear_mode()
    assert http.post("/messages", json=body(directive(status=429))).headers["retry-after"] == "7"


def test_mode_faults_before_the_headers_on_the_models_probe(mode, http):
    mode.set_mode(fault="reset_before_headers", times=1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.get("/models")
    mode.set_mode(fault="hang", times=1)
    with pytest.raises(httpx.ReadTimeout):
        http.get("/models", timeout=0.3)
    assert http.get("/models").status_code == 200


def test_quote_tools_scripts_a_tool_round_trip(fake, client):
    """One mode for both turns: the tool call first, then the tool's result quoted."""
    fake.set_mode(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}], quote_tools=True)
    try:
        messages: list[Any] = [{"role": "user", "content": "Weather?"}]
        first = client.messages.create(model=MODEL, max_tokens=100, tools=[WEATHER], messages=messages)
        call = first.content[-1]
        assert (first.stop_reason, call.type, call.name) == ("tool_use", "tool_use", "get_weather")
        messages += [
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}]},
        ]
        second = client.messages.create(model=MODEL, max_tokens=100, tools=[WEATHER], messages=messages)
        assert second.stop_reason == "end_turn"
        assert [b.text for b in second.content] == [f"fake: {call.id}=18C"]
    finally:
        fake.clear_mode()


def test_sdk_counts_tokens_of_the_input_and_the_tools(client, fake):
    count = client.messages.count_tokens(
        model=MODEL, system="Be brief", messages=[{"role": "user", "content": "hello big world"}], tools=[WEATHER]
    )
    assert isinstance(count, anthropic.types.MessageTokensCount)
    assert count.input_tokens == 2 + 3 + 1 + 5  # system, text, the tool's name and description
    beta = client.beta.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi there"}])
    assert beta.input_tokens == 2
    assert fake.requests()[-1]["path"] == "/v1/messages/count_tokens"


def test_count_tokens_refuses_generation_settings_and_follows_directives(http):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    resp = http.post("/messages/count_tokens", json={**body, "max_tokens": 5})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "max_tokens: Extra inputs are not permitted"
    resp = http.post("/messages/count_tokens?beta=true", json=body)
    assert resp.json() == {"input_tokens": 1}
    steered = {"model": MODEL, "messages": [{"role": "user", "content": directive(status=529)}]}
    resp = http.post("/messages/count_tokens", json=steered)
    assert resp.status_code == 529
    assert resp.json()["error"]["type"] == "overloaded_error"


def test_claude_codes_beta_fields_need_their_betas(http):
    body = {
        "model": MODEL, "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "env"}],
        "tools": [{"name": "t", "input_schema": {"type": "object"}, "defer_loading": True}],
    }  # fmt: skip
    refused = http.post("/messages", json=body)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "messages.1.role: Input should be 'user' or 'assistant'"
    betas = "per-turn-control-2026-07-01,advanced-tool-use-2025-11-20"
    assert http.post("/messages", json=body, headers={"anthropic-beta": betas}).status_code == 200
