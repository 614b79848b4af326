"""Every answer gw sends on /v1/chat/completions and /v1/completions validates
against the openai SDK's own pydantic types, strictly, whatever the backend.

The SDK itself builds its objects without validation (``construct``), so it
never notices a wrong shape; typed clients in other languages do. Here each
whole answer and each streamed ``data:`` payload (but ``[DONE]``) goes through
``model_validate(obj, strict=True)``: no coercion (``created`` must be an int,
not a float or a bool), every ``Literal`` checked (``object``, ``role``,
``finish_reason``, a tool call's ``type``), every required field present
(a chunk choice's ``delta``); fields the types do not name (Azure's
``prompt_filter_results``, ``content_filter_results``) are allowed.

The backends: the OpenAI fake on its OpenAI routes and on its Azure routes
(Azure's stream opens with a chunk whose ``object``, ``id`` and ``model`` are
empty; with its asynchronous filter, annotation chunks without ``delta`` come
mid-stream too), the Anthropic, Gemini and Ollama fakes, and echo.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pydantic
import pytest
from openai.types import Completion, CompletionChoice
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.conftest import APP_KEY, FAKE_KEY, Gateway
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.gemini_server import GeminiFake
from tests.fakes.ollama_server import OllamaFake
from tests.fakes.runner import FakeUpstream
from tests.integration.sse import sse_data

pytestmark = pytest.mark.integration

ANTHROPIC_KEY = "sk-ant-schema-provider-key-0123456789"
GEMINI_KEY = "gemini-schema-provider-key-0123456789"


class StreamedCompletionChoice(CompletionChoice):
    # The SDK's CompletionChoice says finish_reason is never null and that
    # streamed and whole answers share the shape, but OpenAI's own
    # /v1/completions streams send "finish_reason": null on every chunk but
    # the last (so does every compatible server). That one field, and only it,
    # is widened for streamed completions.
    finish_reason: Literal["stop", "length", "content_filter"] | None  # type: ignore[assignment]


class StreamedCompletion(Completion):
    """``Completion`` as OpenAI streams it: ``finish_reason`` null until the last chunk."""

    choices: list[StreamedCompletionChoice]  # type: ignore[assignment]


# The models of the gateway below: one per backend type, two for Azure (its default and its async filter).
BACKENDS = ("openai", "azure", "azure-async-filter", "anthropic", "gemini", "ollama", "echo")
DIRECTIVES: dict[str, dict[str, Any]] = {"azure-async-filter": {"azure_filter": "async"}}

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PROMPT = "hello big wide world"

# case -> (extra request fields, directive for the fakes)
CHAT_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "text": ({}, {}),
    "tool call": (
        {"tools": [TOOL], "tool_choice": "required"},
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
    ),
    "max_tokens cut": ({"max_tokens": 2}, {}),
}
COMPLETION_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "text": ({}, {}),
    "max_tokens cut": ({"max_tokens": 2}, {}),
}
STREAMS = {"whole": None, "stream": False, "stream with include_usage": True}


def config(openai: FakeUpstream, anthropic: AnthropicFake, gemini: GeminiFake, ollama: OllamaFake) -> str:
    return f"""
auth:
  keys:
    - name: app
      key: {APP_KEY}
      models: ["*"]
providers:
  openai:
    type: openai
    base_url: {openai.openai_base_url}
    api_key: {FAKE_KEY}
  azure:
    type: azure
    base_url: {openai.url}
    api_key: {FAKE_KEY}
    api_version: "2024-10-21"
  anthropic:
    type: anthropic
    base_url: {anthropic.anthropic_base_url}
    api_key: {ANTHROPIC_KEY}
  gemini:
    type: gemini
    base_url: {gemini.gemini_base_url}
    api_key: {GEMINI_KEY}
  ollama:
    type: ollama
    base_url: {ollama.ollama_base_url}
  echo:
    type: echo
models:
  openai:
    targets: [{{provider: openai, model: gpt-4o-mini}}]
  azure:
    targets: [{{provider: azure, model: my-deployment}}]
  azure-async-filter:
    targets: [{{provider: azure, model: my-filtered-deployment}}]
  anthropic:
    targets: [{{provider: anthropic, model: claude-sonnet-4-5}}]
  gemini:
    targets: [{{provider: gemini, model: gemini-2.5-flash}}]
  ollama:
    targets: [{{provider: ollama, model: llama3.2}}]
  echo:
    targets: [{{provider: echo, model: echo}}]
routing:
  retries: 0
"""


@pytest.fixture(scope="module")
def http(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with (
        AnthropicFake(api_key=ANTHROPIC_KEY) as anthropic,
        GeminiFake(api_key=GEMINI_KEY) as gemini,
        OllamaFake() as ollama,
    ):
        path: Path = tmp_path_factory.mktemp("gw-schema") / "config.yaml"
        path.write_text(config(fake, anthropic, gemini, ollama))
        gw = Gateway(path)
        try:
            with httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {APP_KEY}"}, timeout=10) as c:
                yield c
        finally:
            gw.close()


def steered(backend: str, prompt: str, directive: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The prompt and the extra body fields that carry ``directive`` to ``backend``'s fake.

    The OpenAI fake reads a body field ``fake`` (gw passes unknown fields
    through to OpenAI-type backends); the converting fakes read ``FAKE {json}``
    opening the prompt; echo takes no directive (it calls a tool when
    ``tool_choice`` asks for one).
    """
    directive = {**DIRECTIVES.get(backend, {}), **directive}
    if not directive or backend == "echo":
        return prompt, {}
    if backend in ("openai", "azure", "azure-async-filter"):
        return prompt, {"fake": directive}
    return f"FAKE {json.dumps(directive)} {prompt}", {}


def invalid(model: type[pydantic.BaseModel], payloads: list[str]) -> list[str]:
    """Why each payload that does not validate does not, with where it is."""
    problems = []
    for i, payload in enumerate(payloads):
        try:
            model.model_validate(json.loads(payload), strict=True)
        except pydantic.ValidationError as exc:
            why = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e['input']!r})" for e in exc.errors())
            problems.append(f"event {i + 1} of {len(payloads)}: {why}\n    {payload}")
    return problems


def answer(http: httpx.Client, path: str, body: dict[str, Any], stream: bool | None) -> list[str]:
    """The JSON payloads of the answer: the whole answer, or each event's data but [DONE]."""
    if stream is not None:
        body = {**body, "stream": True}
        if stream:
            body["stream_options"] = {"include_usage": True}
    resp = http.post(path, json=body)
    assert resp.status_code == 200, resp.text
    if stream is None:
        return [resp.text]
    events = sse_data(resp.text)
    assert events[-1:] == ["[DONE]"], resp.text[-500:]
    return events[:-1]


def check(model: type[pydantic.BaseModel], payloads: list[str], stream: bool | None, case: str) -> None:
    problems = invalid(model, payloads)
    assert not problems, f"{len(problems)} payload(s) are not valid {model.__name__}:\n" + "\n".join(problems)
    objs = [json.loads(p) for p in payloads]
    # Not vacuous: the answer has choices, a finish, and what the case asked for.
    assert any(o["choices"] for o in objs)
    finishes = [c["finish_reason"] for o in objs for c in o["choices"] if c.get("finish_reason")]
    assert len(finishes) == 1, finishes
    if case == "tool call":
        assert finishes == ["tool_calls"]
    if case == "max_tokens cut":
        assert finishes == ["length"]
    if stream:
        assert objs[-1]["choices"] == [] and objs[-1]["usage"]["total_tokens"] > 0


@pytest.mark.parametrize("stream", list(STREAMS.values()), ids=list(STREAMS))
@pytest.mark.parametrize("case", list(CHAT_CASES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_chat_completions_validate_strictly_as_the_openai_sdks_types(http, backend, case, stream):
    fields, directive = CHAT_CASES[case]
    prompt, extra = steered(backend, PROMPT, directive)
    body = {"model": backend, "messages": [{"role": "user", "content": prompt}], **fields, **extra}
    payloads = answer(http, "/v1/chat/completions", body, stream)
    check(ChatCompletion if stream is None else ChatCompletionChunk, payloads, stream, case)


@pytest.mark.parametrize("stream", list(STREAMS.values()), ids=list(STREAMS))
@pytest.mark.parametrize("case", list(COMPLETION_CASES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_completions_validate_strictly_as_the_openai_sdks_types(http, backend, case, stream):
    fields, directive = COMPLETION_CASES[case]
    prompt, extra = steered(backend, PROMPT, directive)
    body = {"model": backend, "prompt": prompt, **fields, **extra}
    payloads = answer(http, "/v1/completions", body, stream)
    check(Completion if stream is None else StreamedCompletion, payloads, stream, case)


def test_azures_filter_annotations_reach_the_client_in_the_streams_identity(http):
    # The prompt filter chunk Azure opens a stream with, and the async
    # filter's annotation chunks, keep what they say (the client may want the
    # filter results) under the stream's own object, id, created and model.
    prompt, extra = steered("azure-async-filter", PROMPT, {})
    body = {"model": "azure-async-filter", "messages": [{"role": "user", "content": prompt}], **extra}
    objs = [json.loads(p) for p in answer(http, "/v1/chat/completions", body, False)]
    assert "prompt_filter_results" in objs[0] and objs[0]["choices"] == []
    annotations = [o for o in objs if any("content_filter_offsets" in c for c in o["choices"])]
    assert len(annotations) == 2
    assert all(c["delta"] == {} for o in annotations for c in o["choices"])
    identity = {(o["object"], o["id"], o["created"], o["model"]) for o in objs}
    assert len(identity) == 1
    ((object_, id_, created, _),) = identity
    assert object_ == "chat.completion.chunk" and id_.startswith("chatcmpl-") and created > 0
