"""POST /v1/completions: passed through to OpenAI-type backends, converted for chat-only ones."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest

from tests.conftest import APP_KEY, Gateway
from tests.fakes.runner import FakeUpstream
from tests.integration.sse import sse_data

pytestmark = pytest.mark.integration


@pytest.fixture
def client(gw_std: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw_std.url + "/v1", api_key=APP_KEY, max_retries=0)


def post(gw: Gateway, body: dict) -> httpx.Response:
    return httpx.post(gw.url + "/v1/completions", headers={"authorization": f"Bearer {APP_KEY}"}, json=body)


def test_openai_backend_gets_the_request_as_is(client, fake: FakeUpstream):
    fake.reset()
    answer = client.completions.create(model="gpt", prompt="say this", max_tokens=5, extra_body={"top_k": 3})
    assert answer.object == "text_completion"
    assert answer.choices[0].text == "fake: say this"
    assert answer.usage is not None and answer.usage.completion_tokens == 3
    sent = fake.requests()[-1]
    assert sent["path"] == "/v1/completions"
    assert sent["body"] == {"model": "gpt-upstream", "prompt": "say this", "max_tokens": 5, "top_k": 3}


def test_azure_backend_gets_its_deployment_completions_url(client, fake: FakeUpstream):
    fake.reset()
    answer = client.completions.create(model="azure-gpt", prompt="hi there")
    assert answer.choices[0].text == "fake: hi there"
    sent = fake.requests()[-1]
    assert sent["path"] == "/openai/deployments/my-deployment/completions"
    assert sent["query"] == {"api-version": "2024-10-21"}


def test_openai_backend_stream_passes_through_with_usage_when_asked(client, fake: FakeUpstream):
    chunks = list(
        client.completions.create(
            model="gpt", prompt="one two three", stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "fake: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    without = list(client.completions.create(model="gpt", prompt="one", stream=True))
    assert all(c.usage is None for c in without)


def test_chat_only_backend_answers_a_text_completion(client):
    answer = client.completions.create(model="echo", prompt="the quick brown fox", max_tokens=3)
    assert answer.object == "text_completion"
    assert answer.id.startswith("cmpl-")
    assert answer.choices[0].text == "the quick brown"
    assert answer.choices[0].finish_reason == "length"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (4, 3)


def test_chat_only_backend_streams_text_completion_chunks(gw_std):
    with httpx.stream(
        "POST",
        gw_std.url + "/v1/completions",
        headers={"authorization": f"Bearer {APP_KEY}"},
        json={"model": "echo", "prompt": "a b c", "stream": True, "stream_options": {"include_usage": True}},
    ) as resp:
        assert resp.status_code == 200
        events = sse_data(resp.read().decode())
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks)
    texts = [c["choices"][0]["text"] for c in chunks if c["choices"]]
    assert "".join(texts) == "a b c"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "echo", "prompt": "x", "suffix": "y"}, "suffix"),
        ({"model": "echo", "prompt": "x", "echo": True}, "echo"),
        ({"model": "echo", "prompt": "x", "logprobs": 2}, "logprobs"),
        ({"model": "echo", "prompt": ["one", "two"]}, "prompt"),
        ({"model": "echo", "prompt": [1, 2, 3]}, "prompt"),
        ({"model": "echo", "prompt": "x", "stream": True, "best_of": 3}, "best_of"),
    ],
)
def test_what_a_chat_only_backend_cannot_do_is_a_400_naming_the_field(gw_std, body, param):
    resp = post(gw_std, body)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "echo"}, "'prompt' is required"),
        ({"model": "echo", "prompt": 5}, "'prompt' must be a string, an array of strings, or an array of token arrays"),
        ({"model": "echo", "prompt": []}, "'prompt' must be a string, an array of strings, or an array of token arrays"),
        ({"prompt": "x"}, "'model' is required"),
        ({"model": "echo", "prompt": "x", "stream": "yes"}, "'stream' must be a boolean"),
    ],
)
def test_invalid_requests_are_400(gw_std, body, message):
    resp = post(gw_std, body)
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == message


def test_unknown_model_is_404_with_request_id(gw_std):
    resp = post(gw_std, {"model": "nope", "prompt": "x"})
    assert resp.status_code == 404
    assert resp.headers["x-request-id"]


def test_upstream_failure_mid_stream_is_an_error_event_then_done(gw_std, fake: FakeUpstream):
    with httpx.stream(
        "POST",
        gw_std.url + "/v1/completions",
        headers={"authorization": f"Bearer {APP_KEY}"},
        json={"model": "gpt", "prompt": "a b c d e", "stream": True, "fake": {"fault": "reset_mid_stream"}},
    ) as resp:
        events = sse_data(resp.read().decode())
    assert events[-1] == "[DONE]"
    assert "error" in orjson.loads(events[-2])
    assert not any('"finish_reason":"stop"' in e for e in events)
