"""The official openai SDK -> gw -> the fake Ollama native API (tests/fakes/ollama_server.py)."""

from __future__ import annotations

import base64
import json
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import APP_KEY, Gateway
from tests.fakes.ollama_server import OllamaFake
from tests.integration.sse import joined_tool_calls, sse_data

pytestmark = pytest.mark.integration

PROXY_KEY = "ollama-proxy-key-0123456789abcdef"
AUTH = {"authorization": f"Bearer {APP_KEY}"}
CHAT = "/v1/chat/completions"
MODEL = "llama3.2"
CALL_ID = re.compile(r"call_[0-9a-f]{24}")


def config(fake: OllamaFake) -> str:
    return f"""
auth:
  keys:
    - name: app
      key: {APP_KEY}
      models: ["*"]
providers:
  local:
    type: ollama
    base_url: {fake.url}
    first_byte_timeout_s: 1
    idle_timeout_s: 1
    timeout_s: 5
  proxied:
    type: ollama
    base_url: {fake.url}
    api_key: {PROXY_KEY}
    headers: {{x-tenant: team-a}}
models:
  ollama:
    targets: [{{provider: local, model: {MODEL}}}]
  ollama-proxied:
    targets: [{{provider: proxied, model: {MODEL}}}]
  ollama-vision:
    targets: [{{provider: local, model: llava}}]
  ollama-missing:
    targets: [{{provider: local, model: mistral}}]
  ollama-embed:
    targets: [{{provider: local, model: all-minilm}}]
routing:
  retries: 0
  # These tests fail one target on purpose, over and over: keep its breaker shut.
  circuit_breaker: {{failures: 1000, cooldown_s: 1}}
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[OllamaFake]:
    with OllamaFake() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gw(fake: OllamaFake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    path: Path = tmp_path_factory.mktemp("gw-ollama") / "config.yaml"
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


def sent(fake: OllamaFake) -> dict:
    """What the fake Ollama received last."""
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


def stream(http: httpx.Client, messages: list[dict], model: str = "ollama", **extra: Any) -> Stream:
    return Stream(http.post(CHAT, json={"model": model, "messages": messages, "stream": True, **extra}))


# ------------------------------------------------------------------ plain answers


def test_plain_answer_with_usage_and_the_request_ollama_got(client, fake):
    fake.reset()
    answer = client.chat.completions.create(
        model="ollama",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello big world"}],
        user="someone",
    )
    assert answer.choices[0].message.content == "fake: hello big world"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == MODEL
    assert answer.id.startswith("chatcmpl-") and answer.object == "chat.completion"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (5, 4, 9)
    request = sent(fake)
    assert request["path"] == "/api/chat"
    assert request["headers"]["content-type"] == "application/json"
    assert "authorization" not in request["headers"], "a local Ollama needs no key"
    assert request["body"] == {
        "model": MODEL,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello big world"}],
        "stream": False,  # said explicitly: Ollama streams when it is absent
    }


def test_a_provider_with_a_key_sends_it_as_bearer_with_its_headers(client, fake, gw):
    answer = client.chat.completions.create(model="ollama-proxied", messages=ask("hi"))
    assert answer.choices[0].message.content == "fake: hi"
    headers = sent(fake)["headers"]
    assert headers["authorization"] == f"Bearer {PROXY_KEY}"
    assert headers["x-tenant"] == "team-a"
    assert PROXY_KEY not in gw.output()


def test_sampling_options_map_and_num_predict_cuts_with_length(client, fake):
    answer = client.chat.completions.create(
        model="ollama", messages=ask("one two three four"), max_tokens=2, temperature=0.3, top_p=0.9, stop="END",
        seed=11, presence_penalty=0.1, frequency_penalty=0.2,
    )
    assert answer.choices[0].message.content == "fake: one"
    assert answer.choices[0].finish_reason == "length"
    assert sent(fake)["body"]["options"] == {
        "temperature": 0.3, "top_p": 0.9, "num_predict": 2, "stop": ["END"], "seed": 11,
        "presence_penalty": 0.1, "frequency_penalty": 0.2,
    }
    client.chat.completions.create(model="ollama", messages=ask("x"), max_completion_tokens=7, max_tokens=3)
    assert sent(fake)["body"]["options"] == {"num_predict": 7}


def test_ollamas_own_options_pass_as_an_extension(http, fake):
    resp = http.post(CHAT, json={"model": "ollama", "messages": ask("x"), "options": {"num_ctx": 8192}, "keep_alive": -1})
    assert resp.status_code == 200
    body = sent(fake)["body"]
    assert body["options"] == {"num_ctx": 8192}
    assert "keep_alive" not in body


@pytest.mark.parametrize(("reason", "finish"), [("length", "length"), ("load", "stop"), ("unload", "stop")])
def test_done_reasons_map(client, reason, finish):
    answer = client.chat.completions.create(model="ollama", messages=fake_says({"done_reason": reason}, "x"))
    assert answer.choices[0].finish_reason == finish


def test_thinking_is_not_content_and_missing_counts_are_zero(client):
    answer = client.chat.completions.create(model="ollama", messages=fake_says({"thinking": "hmm", "counts": False}, "x"))
    assert answer.choices[0].message.content == "fake: x"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (0, 0)


def test_response_format_becomes_format(client, fake):
    client.chat.completions.create(model="ollama", messages=ask("x"), response_format={"type": "json_object"})
    assert sent(fake)["body"]["format"] == "json"
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    client.chat.completions.create(model="ollama", messages=ask("x"), response_format={
        "type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}})
    assert sent(fake)["body"]["format"] == schema


def test_n_above_one_is_a_400_before_ollama(http, fake):
    before = len(fake.requests())
    resp = http.post(CHAT, json={"model": "ollama", "messages": ask("x"), "n": 2})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "n"
    assert len(fake.requests()) == before


# ------------------------------------------------------------------ streams


def test_stream_role_first_text_one_finish_no_usage_chunk_then_done(http, fake):
    got = stream(http, ask("one two three"))
    assert got.chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert got.text == "fake: one two three"
    assert got.finishes == ["stop"]
    assert got.usage_chunks == [] and all("usage" not in c for c in got.chunks)
    assert not got.errors
    request = sent(fake)
    assert request["body"]["stream"] is True
    assert request["headers"]["accept"] == "application/x-ndjson"


def test_stream_with_include_usage_ends_with_exactly_one_usage_chunk(client):
    chunks = list(client.chat.completions.create(
        model="ollama", messages=ask("one two three"), stream=True, stream_options={"include_usage": True}))
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == 1 and chunks[-1] is usage_chunks[0]
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (3, 4)
    assert sum(1 for c in chunks if c.choices and c.choices[0].finish_reason) == 1
    assert {c.model for c in chunks} == {MODEL} and len({c.id for c in chunks}) == 1


@pytest.mark.parametrize("split", [{"split": "bytes"}, {"split": "random", "seed": 1}, {"split": "random", "seed": 7}])
def test_streams_split_into_tiny_writes_arrive_intact_and_in_order(http, split):
    text = "héllo wörld 你好 🎉 done"
    got = stream(http, fake_says({"content": text, **split}), stream_options={"include_usage": True})
    assert got.text == text
    assert [c["choices"][0]["delta"].get("content") for c in got.chunks[1:-2]] == ["héllo ", "wörld ", "你好 ", "🎉 ", "done"]
    assert got.finishes == ["stop"] and len(got.usage_chunks) == 1


def test_a_streamed_length_cut_is_one_length_finish(http):
    got = stream(http, ask("a b c d e"), max_tokens=3)
    assert got.text == "fake: a b" and got.finishes == ["length"]


# ------------------------------------------------------------------ tools

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    },
}
NOW = {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}


def test_tools_reach_ollama_and_calls_come_back_with_ids(client, fake):
    directive = {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "now"}]}
    answer = client.chat.completions.create(model="ollama", messages=fake_says(directive), tools=[WEATHER, NOW])
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_weather", '{"city":"Paris"}'), ("now", "{}")]
    assert len({c.id for c in calls}) == 2 and all(CALL_ID.fullmatch(c.id) for c in calls)
    assert sent(fake)["body"]["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                          "parameters": WEATHER["function"]["parameters"]}},
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}},
    ]


def test_tool_choice_none_sends_no_tools_and_a_named_one_only_it(client, fake):
    client.chat.completions.create(model="ollama", messages=ask("x"), tools=[WEATHER, NOW], tool_choice="none")
    assert "tools" not in sent(fake)["body"]
    client.chat.completions.create(model="ollama", messages=ask("x"), tools=[WEATHER, NOW],
                                   tool_choice={"type": "function", "function": {"name": "now"}})
    assert [t["function"]["name"] for t in sent(fake)["body"]["tools"]] == ["now"]


def test_tool_results_go_back_with_the_name_of_their_call(client, fake):
    messages = [
        {"role": "user", "content": "weather and time?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
            {"id": "call_b", "type": "function", "function": {"name": "now", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp_c": -3}'},
        {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
    ]
    answer = client.chat.completions.create(model="ollama", messages=messages, tools=[WEATHER, NOW])
    assert answer.choices[0].message.content == 'fake: get_weather={"temp_c": -3} now=12:00'
    assert sent(fake)["body"]["messages"] == [
        {"role": "user", "content": "weather and time?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
            {"function": {"name": "now", "arguments": {}}},
        ]},
        {"role": "tool", "content": '{"temp_c": -3}', "tool_name": "get_weather"},
        {"role": "tool", "content": "12:00", "tool_name": "now"},
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
    assert len({c["id"] for c in calls}) == 3 and all(CALL_ID.fullmatch(c["id"]) for c in calls)
    assert {c["type"] for c in calls} == {"function"}
    assert got.finishes == ["tool_calls"] and len(got.usage_chunks) == 1


def test_the_openai_sdk_assembles_calls_ollama_sent_in_one_line(client):
    directive = {"tool_calls": [{"name": "now"}, {"name": "get_weather", "arguments": {"city": "Lima"}}]}
    calls: dict[int, dict] = {}
    finishes = []
    for chunk in client.chat.completions.create(model="ollama", messages=fake_says(directive), tools=[WEATHER, NOW],
                                                stream=True):
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(call.index, {"id": call.id, "name": call.function.name, "arguments": ""})
            assert call.id in (None, entry["id"])
            entry["arguments"] += call.function.arguments or ""
        finishes += [c.finish_reason for c in chunk.choices if c.finish_reason]
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [("now", {}), ("get_weather", {"city": "Lima"})]
    assert finishes == ["tool_calls"]


def test_bad_tool_call_arguments_and_unknown_results_are_400s_naming_the_field(http, fake):
    before = len(fake.requests())
    resp = http.post(CHAT, json={"model": "ollama", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "r"}]})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "messages[1].tool_calls[0].function.arguments"
    streamed = http.post(CHAT, json={"model": "ollama", "stream": True, "messages": [
        {"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "r"}]})
    assert streamed.status_code == 400
    assert streamed.json()["error"]["param"] == "messages[1].tool_call_id"
    assert len(fake.requests()) == before, "nothing reached Ollama"


# ------------------------------------------------------------------ images


def test_data_url_images_go_as_base64_in_images(client, fake):
    answer = client.chat.completions.create(model="ollama-vision", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
        {"type": "text", "text": "and this"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
    ]}])
    assert answer.choices[0].message.content == "fake: what is this\nand this"
    assert sent(fake)["body"]["messages"] == [{
        "role": "user", "content": "what is this\nand this", "images": ["iVBORw0KGgo=", "/9j/4AAQSkZJRg=="]}]


def test_an_image_link_is_a_400_since_ollama_takes_only_base64(http, fake):
    before = len(fake.requests())
    for streamed in (False, True):
        resp = http.post(CHAT, json={"model": "ollama-vision", "stream": streamed, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]})
        assert resp.status_code == 400
        error = resp.json()["error"]
        assert error["param"] == "messages[0].content[0].image_url.url"
        assert "base64 data URL" in error["message"]
    assert len(fake.requests()) == before


# ------------------------------------------------------------------ errors


def test_an_unknown_model_is_ollamas_404_with_its_message(client):
    for streamed in (False, True):
        with pytest.raises(openai.NotFoundError) as info:
            result = client.chat.completions.create(model="ollama-missing", messages=ask("x"), stream=streamed)
            list(result) if streamed else None
        assert 'model "mistral" not found, try pulling it first' in info.value.message


@pytest.mark.parametrize(
    ("status", "expected", "kind"),
    [(400, 400, "invalid_request_error"), (404, 404, "invalid_request_error"), (429, 429, "rate_limit_error"),
     (500, 502, "upstream_error"), (503, 502, "upstream_error")],
)
def test_ollama_error_statuses_map_per_spec_with_the_upstream_message(http, status, expected, kind):
    for streamed in (False, True):
        # retry_after 0: a 429 that asks for no wait, so the next request may use the target.
        fake = {"status": status, "message": f"ollama says {status}", "retry_after": "0"}
        resp = http.post(CHAT, json={"model": "ollama", "stream": streamed, "messages": fake_says(fake)})
        assert resp.status_code == expected, resp.text
        error = resp.json()["error"]
        assert f"ollama says {status}" in error["message"]
        assert error["type"] == kind


def test_a_401_from_an_ollama_proxy_is_a_502_without_its_text(http):
    for streamed in (False, True):
        resp = http.post(CHAT, json={"model": "ollama-proxied", "stream": streamed,
                                     "messages": fake_says({"status": 401, "message": "secret detail"})})
        assert resp.status_code == 502, resp.text
        assert "credentials" in resp.json()["error"]["message"] and "secret detail" not in resp.text
        assert PROXY_KEY not in resp.text


def test_an_error_body_with_200_or_garbage_is_a_502(http):
    for fault in ("error_event", "garbage_mid_stream"):
        resp = http.post(CHAT, json={"model": "ollama", "messages": fake_says({"fault": fault})})
        assert resp.status_code == 502, resp.text


def test_an_error_line_after_200_is_one_error_event_then_done_never_a_finish(http):
    got = stream(http, fake_says({"fault": "error_event", "after": 2, "message": "runner crashed"}, "one two three"),
                 stream_options={"include_usage": True})
    assert got.text == "fake: one "
    assert got.finishes == [], "never a made-up finish_reason"
    assert len(got.errors) == 1 and "runner crashed" in got.errors[0]["message"]
    assert json.loads(got.events[-2]) == {"error": got.errors[0]}, "the error event comes last, before [DONE]"


def test_an_error_line_before_any_content_is_an_http_error(http):
    resp = http.post(CHAT, json={"model": "ollama", "stream": True,
                                 "messages": fake_says({"fault": "error_event", "after": 0, "message": "no memory"})})
    assert resp.status_code == 502
    assert "no memory" in resp.json()["error"]["message"]


@pytest.mark.parametrize("fault", ["truncate", "garbage_mid_stream", "reset_mid_stream", "stall_mid_stream"])
def test_a_fault_after_the_first_bytes_is_one_error_event_then_done(http, fault):
    got = stream(http, fake_says({"fault": fault, "after": 2}, "one two three four"),
                 stream_options={"include_usage": True})
    assert got.text == "fake: one "
    assert got.finishes == []
    assert len(got.errors) == 1
    assert {"message", "type", "param", "code"} <= set(got.errors[0])
    assert json.loads(got.events[-2]) == {"error": got.errors[0]}


def test_the_sdk_raises_on_an_error_line_after_the_stream_started(client):
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(
            model="ollama", stream=True, messages=fake_says({"fault": "error_event", "after": 1}, "a b c")
        ):
            received.append(chunk)
    assert type(info.value) is openai.APIError
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "fake: "


def test_a_stall_before_the_headers_is_a_504(http):
    resp = http.post(CHAT, json={"model": "ollama", "messages": fake_says({"fault": "hang"})})
    assert resp.status_code == 504


# ------------------------------------------------------------------ legacy completions


def test_legacy_completions_are_served_by_ollama_as_chat(client, fake):
    answer = client.completions.create(model="ollama", prompt="say this")
    assert answer.choices[0].text == "fake: say this"
    assert sent(fake)["body"]["messages"] == [{"role": "user", "content": "say this"}]


# ------------------------------------------------------------------ embeddings


def test_embeddings_go_to_api_embed(client, fake):
    fake.reset()
    floats = client.embeddings.create(model="ollama-embed", input=["a b", "c"], dimensions=4, encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1]
    assert [len(d.embedding) for d in floats.data] == [4, 4]
    assert floats.model == "all-minilm"
    assert floats.usage.prompt_tokens == 3 and floats.usage.total_tokens == 3
    request = sent(fake)
    assert request["path"] == "/api/embed"
    assert request["body"] == {"model": "all-minilm", "input": ["a b", "c"], "truncate": True, "dimensions": 4}
    # the SDK's default is base64, which it decodes: the same vectors
    decoded = client.embeddings.create(model="ollama-embed", input=["a b", "c"], dimensions=4)
    assert decoded.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)
    assert sent(fake)["body"]["input"] == ["a b", "c"]


def test_base64_embeddings_are_little_endian_float32(http):
    resp = http.post("/v1/embeddings", json={"model": "ollama-embed", "input": "hello", "encoding_format": "base64"})
    floats = http.post("/v1/embeddings", json={"model": "ollama-embed", "input": "hello"}).json()
    raw = base64.b64decode(resp.json()["data"][0]["embedding"])
    assert struct.unpack(f"<{len(raw) // 4}f", raw) == pytest.approx(floats["data"][0]["embedding"], rel=1e-6)
    assert len(floats["data"][0]["embedding"]) == 8


def test_token_array_embeddings_are_a_400(http, fake):
    before = len(fake.requests())
    resp = http.post("/v1/embeddings", json={"model": "ollama-embed", "input": [1, 2, 3]})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "input"
    assert len(fake.requests()) == before


def test_embedding_errors_map_like_chat(http):
    resp = http.post("/v1/embeddings", json={"model": "ollama-embed", "input": 'FAKE {"status": 400, "message": "too long"}'})
    assert resp.status_code == 400 and "too long" in resp.json()["error"]["message"]
    missing = http.post("/v1/embeddings", json={"model": "ollama-missing", "input": "x"})
    assert missing.status_code == 404 and "try pulling it first" in missing.json()["error"]["message"]


# ------------------------------------------------------------------ /v1/messages over Ollama


def test_the_anthropic_messages_api_is_served_by_ollama(gw, fake):
    with anthropic.Anthropic(base_url=gw.url, api_key=APP_KEY, max_retries=0) as claude:
        message = claude.messages.create(model="ollama", max_tokens=50, system="be brief",
                                         messages=[{"role": "user", "content": "hello there"}])
        assert [b.text for b in message.content] == ["fake: hello there"]
        assert message.stop_reason == "end_turn"
        assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 3)
        assert sent(fake)["body"]["messages"] == [{"role": "system", "content": "be brief"},
                                                  {"role": "user", "content": "hello there"}]
        with claude.messages.stream(model="ollama", max_tokens=50, messages=[{"role": "user", "content": "a b"}]) as s:
            assert "".join(s.text_stream) == "fake: a b"
            assert s.get_final_message().stop_reason == "end_turn"
