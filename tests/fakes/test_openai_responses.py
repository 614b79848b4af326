"""The OpenAI fake's Responses API, checked once with the official SDK pointed straight at it."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.runner import FakeUpstream

KEY = "sk-fake-test-key"


@pytest.fixture(scope="module")
def fake():
    with FakeUpstream(api_key=KEY) as f:
        yield f


@pytest.fixture
def client(fake):
    with openai.OpenAI(base_url=fake.openai_base_url, api_key=KEY, max_retries=0, timeout=5) as c:
        yield c


def test_a_whole_response_is_the_sdks_response(client):
    resp = client.responses.create(model="gpt-4o-mini", input="hello big world")
    assert resp.status == "completed"
    assert resp.output_text == "fake: hello big world"
    assert resp.usage is not None and resp.usage.output_tokens == 4


def test_a_stream_accumulates_in_the_sdk(client):
    with client.responses.stream(model="gpt-4o-mini", input=[{"role": "user", "content": "one two"}]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert final.output_text == "fake: one two"


def test_tool_calls_and_the_output_limit(client):
    fake = {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}], "content": ""}
    resp = client.responses.create(model="m", input="weather?", extra_body={"fake": fake})
    call = resp.output[0]
    assert call.type == "function_call" and call.name == "get_weather" and call.arguments == '{"city":"Oslo"}'
    cut = client.responses.create(model="m", input="a b c d e f", max_output_tokens=2)
    assert cut.status == "incomplete" and cut.incomplete_details.reason == "max_output_tokens"


def test_stored_responses_are_retrieved_cancelled_and_deleted(client):
    resp = client.responses.create(model="gpt-4o-mini", input="keep me")
    assert client.responses.retrieve(resp.id).output_text == "fake: keep me"
    assert client.responses.cancel(resp.id).status == "cancelled"
    client.responses.delete(resp.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(resp.id)
    assert client.responses.input_tokens.count(model="gpt-4o-mini", input="three words here").input_tokens == 3


def test_compact_answers_the_sdks_compacted_response(client):
    out = client.responses.compact(model="gpt-4o-mini", input=[{"role": "user", "content": "a b c"}])
    assert out.object == "response.compaction"
    assert [item.type for item in out.output] == ["message", "compaction"]
