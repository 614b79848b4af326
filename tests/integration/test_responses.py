"""POST /v1/responses: the official openai SDK's ``responses.create`` and ``responses.stream``
-> gw -> every backend type: passed through to OpenAI and Azure (native), converted for
Anthropic, Gemini, Ollama, echo and an OpenAI provider set to ``responses: convert``.

Every answer and stream event is validated with the SDK's own types (``model_validate``
and its stream accumulator); what the backend got is read back from the fakes' logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from tests.conftest import FAKE_KEY, Gateway
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.gemini_server import GeminiFake
from tests.fakes.ollama_server import OllamaFake
from tests.fakes.runner import FakeUpstream

pytestmark = pytest.mark.integration

KEY = "gw-test-key-responses-0123456789"
ANTHROPIC_KEY = "sk-ant-fake-upstream-key-0123456789abcdef"
GEMINI_KEY = "AIza-fake-gemini-provider-key-0123456789"
EVENT = pydantic.TypeAdapter(ResponseStreamEvent)
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
APPLY_PATCH = {"type": "custom", "name": "apply_patch", "description": "Apply a patch to files"}
# model -> what the backend is
NATIVE = ("openai", "azure")
CONVERTED = ("openai-convert", "anthropic", "gemini", "ollama")
EVERY = (*NATIVE, *CONVERTED)


def config(fake: FakeUpstream, ant: AnthropicFake, gem: GeminiFake, oll: OllamaFake) -> str:
    return f"""
auth:
  keys: [{{name: app, key: {KEY}, models: ["*"]}}]
providers:
  up: {{type: openai, base_url: {fake.openai_base_url}, api_key: {FAKE_KEY}, idle_timeout_s: 2}}
  up-convert: {{type: openai, base_url: {fake.openai_base_url}, api_key: {FAKE_KEY}, responses: convert}}
  az: {{type: azure, base_url: {fake.url}, api_key: {FAKE_KEY}}}
  ant: {{type: anthropic, base_url: {ant.anthropic_base_url}, api_key: {ANTHROPIC_KEY}}}
  gem: {{type: gemini, base_url: {gem.gemini_base_url}, api_key: {GEMINI_KEY}}}
  oll: {{type: ollama, base_url: {oll.url}}}
  demo: {{type: echo}}
models:
  openai: {{targets: [{{provider: up, model: gpt-upstream}}]}}
  openai-convert: {{targets: [{{provider: up-convert, model: gpt-upstream}}]}}
  azure: {{targets: [{{provider: az, model: my-deployment}}]}}
  anthropic: {{targets: [{{provider: ant, model: claude-upstream}}]}}
  gemini: {{targets: [{{provider: gem, model: gemini-2.5-flash}}]}}
  ollama: {{targets: [{{provider: oll, model: llama3.2}}]}}
  echo: {{targets: [{{provider: demo, model: echo}}]}}
"""


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[AnthropicFake, GeminiFake, OllamaFake]]:
    with AnthropicFake(api_key=ANTHROPIC_KEY) as ant, GeminiFake(api_key=GEMINI_KEY) as gem, OllamaFake() as oll:
        yield ant, gem, oll


@pytest.fixture(scope="module")
def gw(fake: FakeUpstream, fakes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    path: Path = tmp_path_factory.mktemp("gw-responses") / "config.yaml"
    path.write_text(config(fake, *fakes))
    gateway = Gateway(path)
    yield gateway
    gateway.close()


@pytest.fixture
def client(gw: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0, timeout=10) as sdk:
        yield sdk


def directive(**fake: Any) -> str:
    """The user text that steers every fake: ``FAKE {...}`` (native: also as the body's ``fake``)."""
    return "FAKE " + orjson.dumps(fake).decode()


def raw_events(gw: Gateway, body: dict) -> list[dict]:
    """The SSE events of a streamed request, each validated with the SDK's event types."""
    with httpx.stream(
        "POST", gw.url + "/v1/responses", json={**body, "stream": True},
        headers={"authorization": f"Bearer {KEY}"}, timeout=10,
    ) as resp:  # fmt: skip
        assert resp.status_code == 200, resp.read()
        text = resp.read().decode()
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = block.split("\n")
        data = [line[6:] for line in lines if line.startswith("data: ")]
        name = [line[7:] for line in lines if line.startswith("event: ")]
        if data:
            event = orjson.loads("\n".join(data))
            assert name == [event["type"]], block
            EVENT.validate_python(event)
            events.append(event)
    return events


@pytest.mark.parametrize("model", [*EVERY, "echo"])
def test_a_whole_answer_is_a_valid_response(client, model):
    resp = client.responses.with_raw_response.create(model=model, input="hello there")
    answer = Response.model_validate(orjson.loads(resp.content))
    assert answer.status == "completed"
    expected = "hello there" if model == "echo" else "fake: hello there"
    assert answer.output_text == expected
    assert answer.usage is not None and answer.usage.output_tokens > 0
    stored = resp.headers.get("x-gw-stored")
    assert stored == (None if model in NATIVE else "false")


@pytest.mark.parametrize("model", [*EVERY, "echo"])
def test_a_stream_accumulates_in_the_sdk(client, gw, model):
    with client.responses.stream(model=model, input=[{"role": "user", "content": "one two three"}]) as stream:
        final = stream.get_final_response()
    expected = "one two three" if model == "echo" else "fake: one two three"
    assert final.output_text == expected
    events = raw_events(gw, {"model": model, "input": "one two three"})
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


@pytest.mark.parametrize("model", EVERY)
def test_function_calls_come_back_as_function_call_items(client, model):
    calls = [{"name": "get_weather", "arguments": {"city": "Oslo"}}, {"name": "get_weather", "arguments": {"city": "Rome"}}]
    text = directive(tool_calls=calls)
    resp = client.responses.create(model=model, input=text, tools=[WEATHER], extra_body={"fake": {"tool_calls": calls}} if model in NATIVE else None)
    got = [(item.name, orjson.loads(item.arguments)) for item in resp.output if item.type == "function_call"]
    assert got == [("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Rome"})]
    with client.responses.stream(model=model, input=text, tools=[WEATHER], extra_body={"fake": {"tool_calls": calls}} if model in NATIVE else None) as stream:
        final = stream.get_final_response()
    items = [item for item in final.output if item.type == "function_call"]
    assert [orjson.loads(i.arguments)["city"] for i in items] == ["Oslo", "Rome"]
    assert len({i.id for i in items}) == 2


@pytest.mark.parametrize("model", CONVERTED)
def test_a_custom_tool_call_comes_back_as_a_custom_tool_call(client, fake, model):
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch"
    text = directive(tool_calls=[{"name": "apply_patch", "arguments": {"input": patch}}])
    resp = client.responses.create(model=model, input=text, tools=[APPLY_PATCH])
    (item,) = [i for i in resp.output if i.type == "custom_tool_call"]
    assert item.name == "apply_patch" and item.input == patch
    with client.responses.stream(model=model, input=text, tools=[APPLY_PATCH]) as stream:
        final = stream.get_final_response()
    (item,) = [i for i in final.output if i.type == "custom_tool_call"]
    assert item.input == patch


def test_a_custom_tool_is_offered_to_a_chat_backend_as_a_function_with_one_string(client, fake):
    client.responses.create(model="openai-convert", input="hi", tools=[APPLY_PATCH])
    (tool,) = fake.requests()[-1]["body"]["tools"]
    assert tool["function"]["name"] == "apply_patch"
    assert tool["function"]["parameters"]["properties"]["input"]["type"] == "string"


@pytest.mark.parametrize("model", EVERY)
def test_the_output_limit_makes_an_incomplete_response(client, model):
    resp = client.responses.create(model=model, input="a b c d e f g h", max_output_tokens=2)
    assert resp.status == "incomplete"
    assert resp.incomplete_details is not None and resp.incomplete_details.reason == "max_output_tokens"


@pytest.mark.parametrize("model", ("openai", "anthropic", "gemini", "ollama"))
def test_a_failure_after_the_stream_began_is_response_failed(gw, model):
    fault = {"fault": "reset_mid_stream", "after": 3}
    body: dict[str, Any] = {"model": model, "input": directive(chunks=8, **fault)}
    if model == "openai":
        body["fake"] = {"chunks": 8, **fault}
    events = raw_events(gw, body)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["status"] == "failed"
    assert events[-1]["response"]["error"]["code"] == "server_error"
    assert not any(e["type"] in ("response.completed", "response.incomplete") for e in events)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


def test_a_failure_before_the_stream_began_is_retried_or_an_openai_error(client):
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model="openai", input="x", extra_body={"fake": {"status": 500}})


def test_previous_response_id_on_a_converted_backend_is_a_400_naming_it(client):
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model="anthropic", input="x", previous_response_id="resp_123")
    assert exc.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_a_native_backend_gets_the_request_as_it_is(client, fake):
    client.responses.create(
        model="openai", input="hi", store=False, include=["reasoning.encrypted_content"],
        extra_body={"vendor_field": 1},
    )  # fmt: skip
    sent = fake.requests()[-1]
    assert sent["path"] == "/v1/responses"
    assert sent["body"]["model"] == "gpt-upstream"
    assert sent["body"]["store"] is False and sent["body"]["vendor_field"] == 1


def test_azure_gets_its_v1_responses_url_and_the_deployment_as_model(client, fake):
    client.responses.create(model="azure", input="hi")
    sent = fake.requests()[-1]
    assert sent["path"] == "/openai/v1/responses" and sent["body"]["model"] == "my-deployment"


def test_bad_input_is_a_400_in_openais_envelope(gw):
    resp = httpx.post(gw.url + "/v1/responses", json={"model": "openai", "input": 5}, headers={"authorization": f"Bearer {KEY}"})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "input"


def test_a_stored_response_is_found_on_the_native_backend(client):
    resp = client.responses.create(model="openai", input="keep this")
    assert client.responses.retrieve(resp.id).output_text == "fake: keep this"
    assert client.responses.cancel(resp.id).status == "cancelled"
    client.responses.delete(resp.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(resp.id)


def test_compact_and_input_tokens_go_to_the_native_backend_and_400_elsewhere(client, fake):
    assert client.responses.input_tokens.count(model="openai", input="three words here").input_tokens == 3
    assert fake.requests()[-1]["body"]["model"] == "gpt-upstream"
    compacted = client.responses.compact(model="openai", input=[{"role": "user", "content": "a b"}])
    assert compacted.output[-1].type == "compaction"
    assert fake.requests()[-1]["path"] == "/v1/responses/compact"
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.input_tokens.count(model="openai-convert", input="x")
    assert "needs a native Responses API" in str(exc.value)
    with pytest.raises(openai.BadRequestError):
        client.responses.input_tokens.count(model="anthropic", input="x")


def test_a_response_id_that_is_not_one_is_404(gw):
    resp = httpx.get(gw.url + "/v1/responses/a.b", headers={"authorization": f"Bearer {KEY}"})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


def test_reasoning_crosses_both_ways_on_a_converted_backend(client, fakes):
    ant = fakes[0]
    resp = client.responses.create(
        model="anthropic", input=directive(thinking="weighing it"), reasoning={"effort": "high"}, max_output_tokens=30000
    )  # fmt: skip
    assert ant.requests()[-1]["body"]["thinking"] == {"type": "enabled", "budget_tokens": 24576}
    reasoning, message = resp.output
    assert reasoning.type == "reasoning" and [s.text for s in reasoning.summary] == ["weighing it"]
    assert message.type == "message"
    with client.responses.stream(model="anthropic", input=directive(thinking="weighing it"), reasoning={"effort": "low"}) as stream:
        final = stream.get_final_response()
    assert final.output[0].type == "reasoning"
