"""The official openai SDK -> gw -> the fake Gemini API (tests/fakes/gemini_server.py)."""

from __future__ import annotations

import base64
import json
import re
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import APP_KEY, Gateway
from tests.fakes.gemini_server import GeminiFake
from tests.integration.sse import joined_tool_calls, sse_data

pytestmark = pytest.mark.integration

GEMINI_KEY = "AIza-fake-gemini-provider-key-0123456789"
WRONG_KEY = "AIza-wrong-gemini-provider-key-0123456789"
AUTH = {"authorization": f"Bearer {APP_KEY}"}
CHAT = "/v1/chat/completions"
MODEL = "gemini-2.5-flash"


def config(fake: GeminiFake) -> str:
    base = fake.gemini_base_url
    return f"""
auth:
  keys:
    - name: app
      key: {APP_KEY}
      models: ["*"]
providers:
  gem:
    type: gemini
    base_url: {base}
    api_key: {GEMINI_KEY}
    first_byte_timeout_s: 1
    idle_timeout_s: 1
    timeout_s: 5
    headers: {{x-goog-user-project: my-project}}
  gem-badkey:
    type: gemini
    base_url: {base}
    api_key: {WRONG_KEY}
models:
  gemini:
    targets: [{{provider: gem, model: {MODEL}}}]
  gemini-prefixed:
    targets: [{{provider: gem, model: models/gemini-2.5-pro}}]
  gemini-badkey:
    targets: [{{provider: gem-badkey, model: {MODEL}}}]
  gemini-embed:
    targets: [{{provider: gem, model: gemini-embedding-001}}]
routing:
  retries: 0
  # These tests fail one target on purpose, over and over: keep its breaker shut.
  circuit_breaker: {{failures: 1000, cooldown_s: 1}}
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[GeminiFake]:
    with GeminiFake(api_key=GEMINI_KEY) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gw(fake: GeminiFake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    path: Path = tmp_path_factory.mktemp("gw-gemini") / "config.yaml"
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


def sent(fake: GeminiFake) -> dict:
    """What the fake Gemini received last."""
    return fake.requests()[-1]


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def fake_says(directive: dict, rest: str = "") -> list[dict]:
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
        return [ch["finish_reason"] for c in self.chunks for ch in c["choices"] if ch["finish_reason"] is not None]

    @property
    def usage_chunks(self) -> list[dict]:
        return [c for c in self.chunks if not c["choices"]]

    @property
    def tool_calls(self) -> list[dict]:
        return joined_tool_calls(self.chunks)


def stream(http: httpx.Client, messages: list[dict], **extra: Any) -> Stream:
    return Stream(http.post(CHAT, json={"model": "gemini", "messages": messages, "stream": True, **extra}))


# ------------------------------------------------------------------ plain answers


def test_plain_answer_with_usage_and_the_request_gemini_got(client, fake):
    fake.reset()
    answer = client.chat.completions.create(
        model="gemini",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello big world"}],
        max_tokens=50,
        temperature=0.3,
        stop="END",
        user="someone",
    )
    assert answer.choices[0].message.content == "fake: hello big world"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == MODEL
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (5, 4, 9)
    request = sent(fake)
    assert request["path"] == f"/v1beta/models/{MODEL}:generateContent"
    assert request["headers"]["x-goog-api-key"] == GEMINI_KEY
    assert request["headers"]["x-goog-user-project"] == "my-project"
    assert request["headers"]["content-type"] == "application/json"
    assert request["body"] == {
        "contents": [{"role": "user", "parts": [{"text": "hello big world"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {"temperature": 0.3, "maxOutputTokens": 50, "stopSequences": ["END"]},
    }


def test_a_models_prefixed_target_gets_the_same_url_shape(client, fake):
    client.chat.completions.create(model="gemini-prefixed", messages=ask("x"))
    assert sent(fake)["path"] == "/v1beta/models/gemini-2.5-pro:generateContent"


def test_max_tokens_cut_is_length_and_n_gives_choices(client, fake):
    answer = client.chat.completions.create(model="gemini", messages=ask("one two three four"), max_tokens=2, n=2)
    assert [c.index for c in answer.choices] == [0, 1]
    assert [c.finish_reason for c in answer.choices] == ["length", "length"]
    assert answer.choices[1].message.content == "fake: one"
    assert sent(fake)["body"]["generationConfig"] == {"maxOutputTokens": 2, "candidateCount": 2}


def test_cached_and_thought_tokens_in_usage(client):
    answer = client.chat.completions.create(model="gemini", messages=fake_says({"cached": 10, "thought": "a b c"}, "x"))
    assert answer.choices[0].message.content == "fake: x"  # the thought part is not the answer
    assert answer.usage.prompt_tokens_details.cached_tokens == 10
    # prompt: 10 cached + the words of the FAKE text; completion: 2 words + 3 thought tokens
    assert answer.usage.completion_tokens == 5
    assert answer.usage.completion_tokens_details.reasoning_tokens == 3
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 5


def test_finish_override_safety_is_content_filter(client):
    answer = client.chat.completions.create(model="gemini", messages=fake_says({"finish": "SAFETY"}, "x"))
    assert answer.choices[0].finish_reason == "content_filter"


# ------------------------------------------------------------------ streams


def test_stream_role_first_text_one_finish_no_usage_chunk_then_done(http):
    got = stream(http, ask("one two three"))
    assert got.chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert got.text == "fake: one two three"
    assert got.finishes == ["stop"]
    assert got.usage_chunks == [] and all("usage" not in c for c in got.chunks)
    assert not got.errors


def test_stream_with_include_usage_ends_with_exactly_one_usage_chunk(client, fake):
    chunks = list(client.chat.completions.create(
        model="gemini", messages=ask("one two three"), stream=True, stream_options={"include_usage": True}))
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == 1 and chunks[-1] is usage_chunks[0]
    assert chunks[-1].usage.completion_tokens == 4 and chunks[-1].usage.prompt_tokens == 3
    assert sum(1 for c in chunks if c.choices and c.choices[0].finish_reason) == 1
    request = sent(fake)
    assert request["path"] == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert request["query"] == {"alt": "sse"}


def test_a_repeated_finish_still_gives_one_finish_chunk(http):
    got = stream(http, fake_says({"repeat_finish": True}, "a b"), stream_options={"include_usage": True})
    assert got.text == "fake: a b"
    assert got.finishes == ["stop"]
    assert len(got.usage_chunks) == 1 and got.chunks[-1] is got.usage_chunks[0]


@pytest.mark.parametrize("split", [{"split": "bytes"}, {"split": "random", "seed": 1}, {"split": "random", "seed": 7}])
def test_streams_split_into_tiny_writes_arrive_intact(http, split):
    text = "héllo wörld 你好 🎉 done"
    got = stream(http, fake_says({"content": text, **split}), stream_options={"include_usage": True})
    assert got.text == text
    assert got.finishes == ["stop"] and len(got.usage_chunks) == 1


def test_stream_thought_parts_are_not_content(http):
    got = stream(http, fake_says({"thought": "secret reasoning"}, "visible"))
    assert got.text == "fake: visible"


# ------------------------------------------------------------------ tools

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                       "additionalProperties": False},
        "strict": True,
    },
}
NOW = {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}


def test_tools_and_tool_choice_reach_gemini_and_calls_come_back(client, fake):
    directive = {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "now"}]}
    answer = client.chat.completions.create(
        model="gemini", messages=fake_says(directive), tools=[WEATHER, NOW], tool_choice="required"
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_weather", '{"city":"Paris"}'), ("now", "{}")]
    assert len({c.id for c in calls}) == 2 and all(re.fullmatch(r"call_[0-9a-f]{24}", c.id) for c in calls)
    body = sent(fake)["body"]
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather of a city",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        {"name": "now"},
    ]}]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}


def test_a_named_tool_choice_is_any_with_that_name(client, fake):
    client.chat.completions.create(model="gemini", messages=ask("x"), tools=[WEATHER, NOW],
                                   tool_choice={"type": "function", "function": {"name": "now"}})
    assert sent(fake)["body"]["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["now"]}}


def test_tool_results_go_back_as_function_responses_named_after_their_call(client, fake):
    messages = [
        {"role": "user", "content": "weather and time?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
            {"id": "call_b", "type": "function", "function": {"name": "now", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp_c": -3}'},
        {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
    ]
    answer = client.chat.completions.create(model="gemini", messages=messages, tools=[WEATHER, NOW])
    assert answer.choices[0].message.content == 'fake: get_weather={"temp_c":-3} now={"content":"12:00"}'
    assert sent(fake)["body"]["contents"] == [
        {"role": "user", "parts": [{"text": "weather and time?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                                    {"functionCall": {"name": "now", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": -3}}},
                                   {"functionResponse": {"name": "now", "response": {"content": "12:00"}}}]},
    ]


def test_streamed_tool_calls_have_distinct_stable_indexes_and_whole_arguments(http):
    directive = {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "now"},
                                {"name": "get_weather", "arguments": {"city": "Rome"}}], "tool_events": "separate"}
    got = stream(http, fake_says(directive), tools=[WEATHER, NOW], stream_options={"include_usage": True})
    calls = got.tool_calls
    assert [c["index"] for c in calls] == [0, 1, 2]
    assert [c["function"] for c in calls] == [
        {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"name": "now", "arguments": "{}"},
        {"name": "get_weather", "arguments": '{"city":"Rome"}'},
    ]
    assert len({c["id"] for c in calls}) == 3 and {c["type"] for c in calls} == {"function"}
    assert got.finishes == ["tool_calls"] and len(got.usage_chunks) == 1


def test_the_openai_sdk_assembles_streamed_tool_calls(client):
    directive = {"tool_calls": [{"name": "now"}, {"name": "get_weather", "arguments": {"city": "Lima"}}]}
    calls: dict[int, dict] = {}
    for chunk in client.chat.completions.create(model="gemini", messages=fake_says(directive), tools=[WEATHER, NOW],
                                                stream=True):
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(call.index, {"id": call.id, "name": call.function.name, "arguments": ""})
            entry["arguments"] += call.function.arguments or ""
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [("now", {}), ("get_weather", {"city": "Lima"})]


def test_bad_tool_call_arguments_are_a_400_naming_the_field(http, fake):
    before = len(fake.requests())
    resp = http.post(CHAT, json={"model": "gemini", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "r"}]})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "messages[1].tool_calls[0].function.arguments"
    streamed = http.post(CHAT, json={"model": "gemini", "stream": True, "messages": [
        {"role": "tool", "tool_call_id": "nope", "content": "r"}]})
    assert streamed.status_code == 400
    assert streamed.json()["error"]["param"] == "messages[0].tool_call_id"
    assert len(fake.requests()) == before, "nothing reached Gemini"


# ------------------------------------------------------------------ Gemini 3 thought signatures


def test_thought_signatures_round_trip_through_two_turns(client, fake):
    directive = {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "thought_signature": "U0lHLTE="},
                                {"name": "now"}]}
    first = client.chat.completions.create(model="gemini", messages=fake_says(directive), tools=[WEATHER, NOW])
    calls = first.choices[0].message.tool_calls
    dumped = [c.model_dump(exclude_none=True) for c in calls]
    assert dumped[0]["extra_content"] == {"google": {"thought_signature": "U0lHLTE="}}
    assert "extra_content" not in dumped[1]
    assert re.fullmatch(r"call_[0-9a-f]{24}", calls[0].id), "the id is gw's, not the signature"

    # the client sends the assistant turn back as it got it, plus the results
    messages = [
        *fake_says(directive),
        {"role": "assistant", "content": None, "tool_calls": dumped},
        {"role": "tool", "tool_call_id": calls[0].id, "content": '{"temp_c": 21}'},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "noon"},
    ]
    second = client.chat.completions.create(model="gemini", messages=messages, tools=[WEATHER, NOW])
    assert second.choices[0].message.content.startswith("fake: get_weather=")
    model_turn = sent(fake)["body"]["contents"][1]
    assert model_turn == {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "U0lHLTE="},
        {"functionCall": {"name": "now", "args": {}}},
    ]}


def test_a_streamed_tool_call_carries_its_signature_in_its_first_delta(http, fake):
    directive = {"tool_calls": [{"name": "now"}], "thought_signature": "U0lHLTI="}
    got = stream(http, fake_says(directive), tools=[NOW])
    (call,) = got.tool_calls
    assert call["extra_content"] == {"google": {"thought_signature": "U0lHLTI="}}
    assert call["id"].startswith("call_") and "U0lH" not in call["id"]
    messages = [*fake_says(directive), {"role": "assistant", "tool_calls": [{k: v for k, v in call.items() if k != "index"}]},
                {"role": "tool", "tool_call_id": call["id"], "content": "noon"}]
    again = stream(http, messages, tools=[NOW])
    assert again.text == 'fake: now={"content":"noon"}'
    assert sent(fake)["body"]["contents"][1]["parts"][0]["thoughtSignature"] == "U0lHLTI="


# ------------------------------------------------------------------ content: images, response_format


def test_images_go_as_inline_data_and_file_data(client, fake):
    client.chat.completions.create(model="gemini", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp", "detail": "high"}},
    ]}])
    assert sent(fake)["body"]["contents"][0]["parts"] == [
        {"text": "what is this"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp"}},
    ]


def test_an_image_url_gemini_cannot_read_is_a_400(http):
    resp = http.post(CHAT, json={"model": "gemini", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "ftp://example.com/cat.png"}}]}]})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "messages[0].content[0].image_url.url"


def test_response_format_json_schema_is_a_cleaned_response_schema(client, fake):
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
              "required": ["name", "tags"], "additionalProperties": False}
    client.chat.completions.create(model="gemini", messages=ask("x"), response_format={
        "type": "json_schema", "json_schema": {"name": "thing", "schema": schema, "strict": True}})
    assert sent(fake)["body"]["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"name": {"type": "string"},
                                                            "tags": {"type": "array", "items": {"type": "string"}}},
                           "required": ["name", "tags"]},
    }
    client.chat.completions.create(model="gemini", messages=ask("x"), response_format={"type": "json_object"})
    assert sent(fake)["body"]["generationConfig"] == {"responseMimeType": "application/json"}


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("status", "expected", "kind"),
    [(400, 400, "invalid_request_error"), (404, 404, "invalid_request_error"), (429, 429, "rate_limit_error"),
     (500, 502, "upstream_error"), (503, 502, "upstream_error")],
)
def test_gemini_error_statuses_map_per_spec_with_the_upstream_message(http, status, expected, kind):
    for streamed in (False, True):
        fake = {"status": status, "message": f"gemini says {status}"}
        if status == 429:
            fake["retry_after"] = "1"  # the fake's RetryInfo.retryDelay and header
        resp = http.post(CHAT, json={"model": "gemini", "stream": streamed, "messages": fake_says(fake)})
        assert resp.status_code == expected, resp.text
        error = resp.json()["error"]
        assert f"gemini says {status}" in error["message"]
        assert error["type"] == kind
        assert GEMINI_KEY not in resp.text
        if status == 429:
            assert resp.headers["retry-after"] == "1"  # Gemini's RetryInfo.retryDelay
            assert error["code"] == "RESOURCE_EXHAUSTED"
            time.sleep(1.05)  # gw keeps the target out for that long


def test_a_wrong_provider_key_is_a_502_without_googles_text_or_the_key(http, gw):
    for streamed in (False, True):
        resp = http.post(CHAT, json={"model": "gemini-badkey", "stream": streamed, "messages": ask("x")})
        assert resp.status_code == 502, resp.text
        assert "credentials" in resp.json()["error"]["message"]
        assert "API key not valid" not in resp.text
        assert WRONG_KEY not in resp.text
    assert WRONG_KEY not in gw.output() and GEMINI_KEY not in gw.output()


def test_a_blocked_prompt_is_a_400_content_filter_streamed_or_not(http):
    for streamed in (False, True):
        resp = http.post(CHAT, json={"model": "gemini", "stream": streamed, "messages": fake_says({"block": "SAFETY"})})
        assert resp.status_code == 400, resp.text
        error = resp.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["code"] == "content_filter"
        assert "SAFETY" in error["message"]


def test_the_sdk_raises_bad_request_for_a_blocked_prompt(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gemini", messages=fake_says({"block": "PROHIBITED_CONTENT"}))
    assert info.value.code == "content_filter"


@pytest.mark.parametrize("fault", ["error_event", "truncate", "garbage_mid_stream", "reset_mid_stream",
                                   "stall_mid_stream"])
def test_a_fault_after_the_first_bytes_is_one_error_event_then_done_never_a_finish(http, fault):
    got = stream(http, fake_says({"fault": fault, "after": 2}, "one two three four"),
                 stream_options={"include_usage": True})
    assert got.text == "fake: one "
    assert got.finishes == [], "never a made-up finish_reason"
    assert len(got.errors) == 1
    assert json.loads(got.events[-2]) == {"error": got.errors[0]}, "the error event comes last, before [DONE]"
    assert {"message", "type", "param", "code"} <= set(got.errors[0])
    if fault == "error_event":
        assert "An internal error has occurred" in got.errors[0]["message"]


def test_the_sdk_raises_on_a_gemini_error_after_the_stream_started(client):
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(
            model="gemini", stream=True, messages=fake_says({"fault": "error_event", "after": 1}, "a b c")
        ):
            received.append(chunk)
    assert type(info.value) is openai.APIError
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "fake: "


def test_a_stall_before_the_headers_is_a_504(http):
    resp = http.post(CHAT, json={"model": "gemini", "messages": fake_says({"fault": "hang"})})
    assert resp.status_code == 504


# ------------------------------------------------------------------ legacy completions


def test_legacy_completions_are_served_by_gemini_as_chat(client, fake):
    answer = client.completions.create(model="gemini", prompt="say this")
    assert answer.choices[0].text == "fake: say this"
    assert sent(fake)["body"]["contents"] == [{"role": "user", "parts": [{"text": "say this"}]}]


# ------------------------------------------------------------------ embeddings


def test_embeddings_go_to_batch_embed_contents(client, fake):
    fake.reset()
    floats = client.embeddings.create(model="gemini-embed", input=["a b", "c"], dimensions=4, encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1]
    assert [len(d.embedding) for d in floats.data] == [4, 4]
    assert floats.model == "gemini-embedding-001"
    assert floats.usage.prompt_tokens == 2  # estimated: 4 characters a token, at least 1 per input
    request = sent(fake)
    assert request["path"] == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert request["body"] == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a b"}]}, "outputDimensionality": 4},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "c"}]}, "outputDimensionality": 4},
    ]}
    # the SDK's default is base64, which it decodes: the same vectors
    decoded = client.embeddings.create(model="gemini-embed", input=["a b", "c"], dimensions=4)
    assert decoded.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)


def test_base64_embeddings_are_little_endian_float32(http):
    resp = http.post("/v1/embeddings", json={"model": "gemini-embed", "input": "hello", "encoding_format": "base64"})
    floats = http.post("/v1/embeddings", json={"model": "gemini-embed", "input": "hello"}).json()
    raw = base64.b64decode(resp.json()["data"][0]["embedding"])
    values = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert values == pytest.approx(floats["data"][0]["embedding"], rel=1e-6)


def test_token_array_embeddings_are_a_400(http):
    resp = http.post("/v1/embeddings", json={"model": "gemini-embed", "input": [1, 2, 3]})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "input"


def test_embedding_errors_map_like_chat(http):
    resp = http.post("/v1/embeddings", json={"model": "gemini-embed", "input": 'FAKE {"status": 400, "message": "too long"}'})
    assert resp.status_code == 400 and "too long" in resp.json()["error"]["message"]
