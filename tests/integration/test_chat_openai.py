"""The official openai SDK -> gw -> the fake OpenAI/Azure upstream (and echo)."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import APP_KEY, FAKE_KEY, Gateway
from tests.fakes.runner import FakeUpstream

pytestmark = pytest.mark.integration


@pytest.fixture
def client(gw_std: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw_std.url + "/v1", api_key=APP_KEY, max_retries=0)


def last_request(fake: FakeUpstream) -> dict:
    return fake.requests()[-1]


def test_non_streaming_answer_comes_from_the_upstream_with_the_model_rewritten(client, fake):
    fake.reset()
    answer = client.chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": "hello big world"}]
    )
    assert answer.choices[0].message.content == "fake: hello big world"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.total_tokens > 0
    sent = last_request(fake)
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["model"] == "gpt-upstream"
    assert sent["headers"]["authorization"] == "Bearer sk-fake-upstream-key-0123456789abcdef"


def test_unknown_body_fields_pass_through_unchanged(client, fake):
    fake.reset()
    client.chat.completions.create(
        model="gpt",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"top_k": 7, "guided_json": {"type": "object", "properties": {"a": {"type": "integer"}}}},
        temperature=0.3,
    )
    body = last_request(fake)["body"]
    assert body["top_k"] == 7
    assert body["guided_json"] == {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert body["temperature"] == 0.3


def test_request_id_and_provider_headers_are_on_proxied_answers(gw_std, fake):
    fake.reset()
    resp = httpx.post(
        gw_std.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {APP_KEY}", "x-request-id": "my-trace-123"},
        json={"model": "gpt", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == "my-trace-123"
    assert resp.headers["x-gw-provider"] == "up"
    assert float(resp.headers["x-gw-overhead-ms"]) >= 0
    assert last_request(fake)["headers"]["x-request-id"] == "my-trace-123"
    fresh = httpx.post(
        gw_std.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {APP_KEY}"},
        json={"model": "gpt", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert len(fresh.headers["x-request-id"]) >= 16


def test_stream_without_include_usage_has_no_usage_chunk_and_one_finish(client, fake):
    chunks = list(
        client.chat.completions.create(
            model="gpt", messages=[{"role": "user", "content": "one two three four"}], stream=True
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "fake: one two three four"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert all(c.choices for c in chunks), "no usage chunk (choices == []) unless asked"


def test_stream_with_include_usage_ends_with_exactly_one_usage_chunk(client, fake):
    chunks = list(
        client.chat.completions.create(
            model="gpt",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == 1 and chunks[-1] is usage_chunks[0]
    assert usage_chunks[0].usage is not None and usage_chunks[0].usage.completion_tokens > 0
    assert sum(1 for c in chunks if c.choices and c.choices[0].finish_reason) == 1


def test_stream_asks_the_upstream_for_usage_even_when_the_client_did_not(client, fake):
    fake.reset()
    list(client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "x"}], stream=True))
    assert last_request(fake)["body"]["stream_options"] == {"include_usage": True}


def test_stream_events_reach_the_client_as_the_upstream_sent_them(gw_std, fake):
    """Pass-through: the bytes of each upstream event are forwarded, not re-encoded."""
    body = {"model": "gpt", "messages": [{"role": "user", "content": "a b"}], "stream": True,
            "stream_options": {"include_usage": True}}
    direct = httpx.post(fake.openai_base_url + "/chat/completions", json={**body, "model": "gpt-upstream"},
                        headers={"authorization": "Bearer sk-fake-upstream-key-0123456789abcdef"})
    via = httpx.post(gw_std.url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {APP_KEY}"})
    assert via.headers["content-type"].startswith("text/event-stream")

    def shape(text: str) -> list[str]:  # ids and timestamps differ between the two calls
        import re
        return [re.sub(r'"(id|created)":("[^"]*"|\d+)', "", line) for line in text.split("\n")]

    assert shape(via.text) == shape(direct.text)
    assert via.text.endswith("data: [DONE]\n\n")


def test_azure_deployment_url_api_version_and_api_key_header(client, fake):
    fake.reset()
    answer = client.chat.completions.create(model="azure-gpt", messages=[{"role": "user", "content": "hi az"}])
    assert answer.choices[0].message.content == "fake: hi az"
    sent = last_request(fake)
    assert sent["path"] == "/openai/deployments/my-deployment/chat/completions"
    assert sent["query"] == {"api-version": "2024-10-21"}
    assert sent["headers"]["api-key"] == "sk-fake-upstream-key-0123456789abcdef"
    assert "authorization" not in sent["headers"]


def test_azure_streams_too(client):
    chunks = list(
        client.chat.completions.create(
            model="azure-gpt", messages=[{"role": "user", "content": "x y"}], stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "fake: x y"
    assert chunks[-1].usage is not None


def test_echo_answers_the_last_user_message(client):
    answer = client.chat.completions.create(
        model="echo",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "the last one"}]},
        ],
    )
    assert answer.choices[0].message.content == "the last one"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 3
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 3


def test_echo_streams_word_by_word_and_honours_max_tokens(client):
    chunks = list(
        client.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "one two three four five"}],
            stream=True, max_tokens=3, stream_options={"include_usage": True},
        )
    )
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert deltas == ["one ", "two ", "three"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_models_lists_only_what_the_key_may_use(gw_std):
    every = openai.OpenAI(base_url=gw_std.url + "/v1", api_key=APP_KEY).models.list()
    assert {m.id for m in every} == {"gpt", "azure-gpt", "wrong-creds", "dead-only", "dead-then-up", "echo"}
    only = openai.OpenAI(base_url=gw_std.url + "/v1", api_key="gw-test-key-echo-0123456789").models.list()
    assert [m.id for m in only] == ["echo"]


def test_a_connection_error_is_retried_on_the_other_target(gw_std, fake):
    fake.reset()
    resp = httpx.post(
        gw_std.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {APP_KEY}"},
        json={"model": "dead-then-up", "messages": [{"role": "user", "content": "retry me"}]},
    )
    assert resp.status_code == 200
    assert resp.headers["x-gw-provider"] == "up"
    assert resp.json()["choices"][0]["message"]["content"] == "fake: retry me"


def test_a_retried_stream_sends_the_client_what_it_asked_not_what_the_first_try_set(client, fake):
    # gw asks every upstream for usage; that must not leak into the next
    # target's request as if the client had asked for the usage chunk.
    fake.reset()
    chunks = list(
        client.chat.completions.create(
            model="dead-then-up", messages=[{"role": "user", "content": "retry me"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "fake: retry me"
    assert all(c.usage is None for c in chunks)
    assert fake.requests()[-1]["body"]["stream_options"] == {"include_usage": True}


def test_when_every_target_fails_the_fallback_model_answers(fake, gateway):
    from tests.conftest import FAKE_KEY, free_port

    gw = gateway(f"""
providers:
  dead: {{type: openai, base_url: "http://127.0.0.1:{free_port()}/v1", connect_timeout_s: 1}}
  up: {{type: openai, base_url: "{fake.openai_base_url}", api_key: {FAKE_KEY}}}
models:
  primary:
    targets: [{{provider: dead, model: a}}, {{provider: dead, model: b}}]
    fallbacks: [backup]
  backup:
    targets: [{{provider: up, model: backup-upstream}}]
routing:
  retries: 1
""")
    fake.reset()
    resp = httpx.post(gw.url + "/v1/chat/completions",
                      json={"model": "primary", "messages": [{"role": "user", "content": "fall back"}]})
    assert resp.status_code == 200
    assert resp.headers["x-gw-provider"] == "up"
    assert resp.json()["choices"][0]["message"]["content"] == "fake: fall back"
    assert [r["body"]["model"] for r in fake.requests()] == ["backup-upstream"]
    stream = httpx.post(gw.url + "/v1/chat/completions",
                        json={"model": "primary", "stream": True, "messages": [{"role": "user", "content": "s"}]})
    assert stream.status_code == 200 and stream.text.endswith("data: [DONE]\n\n")


TOOLS = [
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {"name": "other", "parameters": {"type": "object", "properties": {}}}},
]


@pytest.mark.parametrize(
    ("tool_choice", "name"), [("required", "lookup"), ({"type": "function", "function": {"name": "other"}}, "other")]
)
def test_echo_calls_the_tool_a_request_forces(client, tool_choice, name):
    messages = [{"role": "user", "content": "find this"}]
    answer = client.chat.completions.create(model="echo", messages=messages, tools=TOOLS, tool_choice=tool_choice)
    call = answer.choices[0].message.tool_calls[0]
    assert answer.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, call.function.arguments) == (name, '{"text":"find this"}')
    with client.chat.completions.stream(
        model="echo", messages=messages, tools=TOOLS, tool_choice=tool_choice
    ) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]
    assert (streamed.function.name, streamed.function.arguments) == (name, '{"text":"find this"}')
    assert final.choices[0].finish_reason == "tool_calls"
    # With the tool's result last, echo answers in text again.
    follow = messages + [
        {"role": "assistant", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "42"},
    ]
    again = client.chat.completions.create(model="echo", messages=follow, tools=TOOLS, tool_choice=tool_choice)
    assert again.choices[0].message.content == "find this"
    auto = client.chat.completions.create(model="echo", messages=messages, tools=TOOLS)
    assert auto.choices[0].message.tool_calls is None


def test_a_request_body_of_several_mib_reaches_the_backend_whole(gateway, fake):
    # an agent's long context: over aiohttp's 1 MiB "large body" mark (a ResourceWarning,
    # ignored by default), under max_body_bytes
    gw = gateway(f"""
providers:
  up: {{type: openai, base_url: {fake.openai_base_url}, api_key: {FAKE_KEY}}}
models:
  gpt: {{targets: [{{provider: up, model: gpt-upstream}}]}}
""")
    fake.reset()
    text = "word " * 600_000  # 3 MB
    resp = httpx.post(gw.url + "/v1/chat/completions", timeout=30,
                      json={"model": "gpt", "messages": [{"role": "user", "content": text}]})  # fmt: skip
    assert resp.status_code == 200, resp.text[:300]
    assert last_request(fake)["body"]["messages"][0]["content"] == text
