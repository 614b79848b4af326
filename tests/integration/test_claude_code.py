"""What Claude Code asks of the ``/v1/messages`` family, with the official SDKs against a real gw:
count_tokens (forwarded to Anthropic and Gemini, estimated elsewhere), ``?beta=true``,
Anthropic's envelope on every ``/v1/messages*`` path, the client's ``anthropic-*``
headers reaching Anthropic backends, the models list in Anthropic's format, ``HEAD /``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import orjson
import pytest

from tests.conftest import FAKE_KEY, Gateway, free_port
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.gemini_server import GeminiFake
from tests.fakes.runner import FakeUpstream

pytestmark = pytest.mark.integration

KEY = "gw-test-key-claude-code-0123456789"
ECHO_ONLY_KEY = "gw-test-key-claude-code-echo-0123456789"
ANTHROPIC_KEY = "sk-ant-fake-upstream-key-0123456789abcdef"
GEMINI_KEY = "AIza-fake-gemini-key-0123456789abcdef"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
TOOL = {
    "name": "get_weather",
    "description": "The weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
SYSTEM = "You are a terse assistant"
MESSAGES = [{"role": "user", "content": "What is the weather in Paris today"}]


def config(fake: FakeUpstream, ant: AnthropicFake, gem: GeminiFake) -> str:
    dead = free_port()
    return f"""
auth:
  keys:
    - name: app
      key: {KEY}
      models: ["*"]
    - name: echo-only
      key: {ECHO_ONLY_KEY}
      models: ["echo"]
providers:
  ant:
    type: anthropic
    base_url: {ant.anthropic_base_url}
    api_key: {ANTHROPIC_KEY}
    api_version: "2023-06-01"
    headers: {{anthropic-beta: provider-beta-1, x-provider-extra: kept}}
  gem:
    type: gemini
    base_url: {gem.gemini_base_url}
    api_key: {GEMINI_KEY}
  up:
    type: openai
    base_url: {fake.openai_base_url}
    api_key: {FAKE_KEY}
  counted-only:
    type: openai
    base_url: {fake.openai_base_url}
    api_key: {FAKE_KEY}
  dead-ant:
    type: anthropic
    base_url: http://127.0.0.1:{dead}/v1
    api_key: {ANTHROPIC_KEY}
    connect_timeout_s: 1
  demo:
    type: echo
models:
  claude:
    targets: [{{provider: ant, model: claude-upstream}}]
  gemini:
    targets: [{{provider: gem, model: gemini-upstream}}]
  gpt:
    targets: [{{provider: up, model: gpt-upstream}}]
  echo:
    targets: [{{provider: demo, model: echo-upstream}}]
  "claude-*":
    targets: [{{provider: ant, model: claude-upstream}}]
  dead-claude-then-gpt:
    targets: [{{provider: dead-ant, model: c, weight: 100}}, {{provider: counted-only, model: gpt-upstream}}]
routing:
  retries: 1
  circuit_breaker: {{failures: 1000, cooldown_s: 1}}
"""


@pytest.fixture(scope="module")
def ant() -> Iterator[AnthropicFake]:
    with AnthropicFake(api_key=ANTHROPIC_KEY) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gem() -> Iterator[GeminiFake]:
    with GeminiFake(api_key=GEMINI_KEY) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gw(
    fake: FakeUpstream, ant: AnthropicFake, gem: GeminiFake, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    path: Path = tmp_path_factory.mktemp("gw-claude-code") / "config.yaml"
    path.write_text(config(fake, ant, gem))
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


@pytest.fixture(autouse=True)
def _clean(fake: FakeUpstream, ant: AnthropicFake, gem: GeminiFake) -> None:
    fake.reset()
    ant.reset()
    gem.reset()


def words(*texts: str) -> int:
    return sum(len(t.split()) for t in texts)


# ---------------------------------------------------------------- count_tokens


def test_count_tokens_on_an_anthropic_backend_is_anthropics_own_count(client, ant):
    raw = client.messages.with_raw_response.count_tokens(
        model="claude", system=SYSTEM, messages=MESSAGES, tools=[TOOL]
    )
    count = raw.parse()
    assert isinstance(count, anthropic.types.MessageTokensCount)
    # the fake's count: every word of the input, the tool's name and description
    assert count.input_tokens == words(SYSTEM, MESSAGES[0]["content"], TOOL["name"], TOOL["description"])
    assert raw.headers["x-gw-token-count"] == "exact"
    assert raw.headers["x-gw-provider"] == "ant"
    sent = ant.requests()[-1]
    assert sent["path"] == "/v1/messages/count_tokens"
    assert sent["body"] == {
        "model": "claude-upstream",
        "system": SYSTEM,
        "messages": MESSAGES,
        "tools": [TOOL],
    }


def test_beta_count_tokens_with_beta_true_passes_the_beta_header(client, http, ant):
    count = client.beta.messages.count_tokens(model="claude", messages=MESSAGES)
    assert isinstance(count, anthropic.types.beta.BetaMessageTokensCount)
    assert count.input_tokens == words(MESSAGES[0]["content"])
    assert ant.requests()[-1]["headers"]["anthropic-beta"] == "token-counting-2024-11-01"
    # Claude Code puts ?beta=true on every messages path
    resp = http.post(
        "/v1/messages/count_tokens?beta=true",
        json={"model": "claude", "messages": MESSAGES},
        headers={"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"input_tokens": words(MESSAGES[0]["content"])}
    sent = ant.requests()[-1]
    assert sent["path"] == "/v1/messages/count_tokens"
    assert sent["headers"]["anthropic-beta"] == "claude-code-20250219,interleaved-thinking-2025-05-14"


def test_count_tokens_on_a_gemini_backend_is_geminis_count(client, gem):
    raw = client.messages.with_raw_response.count_tokens(
        model="gemini", system=SYSTEM, messages=MESSAGES, tools=[TOOL]
    )
    count = raw.parse()
    assert count.input_tokens == words(SYSTEM, MESSAGES[0]["content"], TOOL["name"], TOOL["description"])
    assert raw.headers["x-gw-token-count"] == "exact"
    assert raw.headers["x-gw-provider"] == "gem"
    sent = gem.requests()[-1]
    assert sent["path"] == "/v1beta/models/gemini-upstream:countTokens"
    request = sent["body"]["generateContentRequest"]
    assert request["model"] == "models/gemini-upstream"
    assert request["contents"] == [{"role": "user", "parts": [{"text": MESSAGES[0]["content"]}]}]
    assert request["systemInstruction"] == {"parts": [{"text": SYSTEM}]}
    assert request["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    assert "anthropic-beta" not in sent["headers"]


@pytest.mark.parametrize("model", ["gpt", "echo"])
def test_other_backends_get_an_estimate_flagged_as_such_without_being_called(client, fake, model):
    raw = client.messages.with_raw_response.count_tokens(
        model=model, system=SYSTEM, messages=MESSAGES, tools=[TOOL]
    )
    count = raw.parse()
    assert raw.headers["x-gw-token-count"] == "estimated"
    # ceil(characters / 4) over the system prompt, the text and each tool's JSON
    chars = len(SYSTEM) + len(MESSAGES[0]["content"]) + len(orjson.dumps(TOOL))
    assert count.input_tokens == math.ceil(chars / 4)
    assert raw.headers["x-gw-provider"] == ("up" if model == "gpt" else "demo")
    assert fake.requests() == []


def test_a_count_falls_back_like_any_call_and_an_estimate_leaves_the_breaker_alone(gw, http, fake):
    for _ in range(3):
        resp = http.post(
            "/v1/messages/count_tokens", json={"model": "dead-claude-then-gpt", "messages": MESSAGES}
        )
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-gw-token-count"] == "estimated"
        assert resp.headers["x-gw-provider"] == "counted-only"
    assert fake.requests() == []
    providers = httpx.get(gw.url + "/health/detailed").json()["providers"]
    assert providers["dead-ant"]["failures"] == 3  # tried, failed: counted
    # never called: no latency sample, no error rate, no failure
    assert providers["counted-only"]["latency_ms"] is None
    assert providers["counted-only"]["error_rate"] is None
    assert providers["counted-only"]["failures"] == 0


def test_the_estimate_is_characters_over_four_rounded_up(http):
    resp = http.post(
        "/v1/messages/count_tokens", json={"model": "gpt", "messages": [{"role": "user", "content": "abcde"}]}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"input_tokens": 2}
    assert resp.headers["x-gw-token-count"] == "estimated"


def test_count_tokens_errors_are_anthropic_errors(gw, client):
    with pytest.raises(anthropic.NotFoundError) as not_found:
        client.messages.count_tokens(model="no-such-model", messages=MESSAGES)
    assert not_found.value.body["type"] == "error"
    assert not_found.value.body["error"]["type"] == "not_found_error"
    with anthropic.Anthropic(base_url=gw.url, api_key=ECHO_ONLY_KEY, max_retries=0) as echo_only:
        with pytest.raises(anthropic.PermissionDeniedError):
            echo_only.messages.count_tokens(model="claude", messages=MESSAGES)
    with anthropic.Anthropic(base_url=gw.url, api_key="gw-wrong-key-0123456789", max_retries=0) as wrong:
        with pytest.raises(anthropic.AuthenticationError):
            wrong.messages.count_tokens(model="claude", messages=MESSAGES)
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.count_tokens(model="claude", messages=[])
    assert bad.value.body["error"]["type"] == "invalid_request_error"


def test_an_anthropic_refusal_of_a_count_keeps_its_status_and_message(http):
    resp = http.post(
        "/v1/messages/count_tokens", json={"model": "claude", "messages": MESSAGES, "max_tokens": 10}
    )
    assert resp.status_code == 400
    assert resp.json()["type"] == "error"
    assert "max_tokens: Extra inputs are not permitted" in resp.json()["error"]["message"]


# ---------------------------------------------------------------- paths and envelopes


def test_messages_with_beta_true_is_the_messages_endpoint(http, ant):
    resp = http.post(
        "/v1/messages?beta=true", json={"model": "claude", "max_tokens": 50, "messages": MESSAGES}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["type"] == "message"
    assert ant.requests()[-1]["path"] == "/v1/messages"


def test_unknown_messages_paths_answer_in_anthropics_envelope(client, http):
    with pytest.raises(anthropic.NotFoundError) as exc:
        client.messages.batches.list()
    assert exc.value.body["type"] == "error"
    assert exc.value.body["error"]["type"] == "not_found_error"
    for method, path in [
        ("POST", "/v1/messages/batches"),
        ("GET", "/v1/messages/"),
        ("POST", "/v1/messages/x?beta=true"),
    ]:
        resp = http.request(method, path, json={})
        assert resp.status_code == 404, (method, path)
        body = resp.json()
        assert body["type"] == "error" and body["error"]["type"] == "not_found_error", body
        assert resp.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_a_wrong_method_on_a_messages_path_is_a_405_in_anthropics_envelope(http, path):
    resp = http.get(path)
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST"
    assert resp.json()["type"] == "error"
    assert resp.json()["error"]["type"] == "invalid_request_error"


def test_other_unknown_paths_keep_openais_envelope(http):
    resp = http.post("/v1/nothing-here", json={})
    assert resp.status_code == 404
    assert resp.json()["error"]["type"] == "not_found_error"


# ---------------------------------------------------------------- the client's anthropic headers


@pytest.mark.parametrize("stream", [False, True])
def test_the_clients_anthropic_headers_reach_an_anthropic_backend_over_the_providers(client, ant, stream):
    extra = {"anthropic-beta": "client-beta-2", "anthropic-version": "2099-01-01"}
    if stream:
        with client.messages.stream(
            model="claude", max_tokens=50, messages=MESSAGES, extra_headers=extra
        ) as s:
            s.get_final_message()
    else:
        client.messages.create(model="claude", max_tokens=50, messages=MESSAGES, extra_headers=extra)
    sent = ant.requests()[-1]["headers"]
    assert sent["anthropic-beta"] == "client-beta-2"
    assert sent["anthropic-version"] == "2099-01-01"
    assert sent["x-provider-extra"] == "kept"  # the provider's other headers stay
    assert sent["x-api-key"] == ANTHROPIC_KEY


def test_without_client_headers_the_provider_ones_are_sent(ant, gw):
    resp = httpx.post(
        gw.url + "/v1/messages",
        headers={"x-api-key": KEY},
        json={"model": "claude", "max_tokens": 50, "messages": MESSAGES},
    )
    assert resp.status_code == 200, resp.text
    sent = ant.requests()[-1]["headers"]
    assert sent["anthropic-beta"] == "provider-beta-1"
    assert sent["anthropic-version"] == "2023-06-01"


def test_a_converting_backend_does_not_get_the_anthropic_headers(client, fake):
    client.messages.create(
        model="gpt", max_tokens=50, messages=MESSAGES, extra_headers={"anthropic-beta": "client-beta-2"}
    )
    sent = fake.requests()[-1]["headers"]
    assert "anthropic-beta" not in sent
    assert "anthropic-version" not in sent


def test_an_openai_client_on_an_anthropic_backend_sends_only_the_providers_headers(gw, ant):
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0) as oai:
        oai.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"anthropic-beta": "client-beta-2"},
        )
    sent = ant.requests()[-1]["headers"]
    assert sent["anthropic-beta"] == "provider-beta-1"


# ---------------------------------------------------------------- models


def test_the_anthropic_sdk_lists_models_in_anthropics_format(client):
    page = client.models.list()
    ids = [m.id for m in page.data]
    # the pattern "claude-*" is not a model to list
    assert ids == ["claude", "gemini", "gpt", "echo", "dead-claude-then-gpt"]
    for model in page.data:
        assert isinstance(model, anthropic.types.ModelInfo)
        assert model.type == "model"
        assert model.display_name == model.id
        assert model.created_at.year == 1970
    assert page.has_more is False
    assert page.first_id == "claude" and page.last_id == "dead-claude-then-gpt"


def test_the_anthropic_list_holds_only_the_keys_models(gw):
    with anthropic.Anthropic(base_url=gw.url, api_key=ECHO_ONLY_KEY, max_retries=0) as echo_only:
        assert [m.id for m in echo_only.models.list().data] == ["echo"]


def test_the_anthropic_sdk_retrieves_one_model(gw, client):
    model = client.models.retrieve("gemini")
    assert isinstance(model, anthropic.types.ModelInfo)
    assert model.id == "gemini" and model.type == "model"
    for missing in ["no-such-model", "claude-*"]:
        with pytest.raises(anthropic.NotFoundError) as exc:
            client.models.retrieve(missing)
        assert exc.value.body["error"]["type"] == "not_found_error"
    with anthropic.Anthropic(base_url=gw.url, api_key=ECHO_ONLY_KEY, max_retries=0) as echo_only:
        with pytest.raises(anthropic.NotFoundError):  # not the key's: as unknown
            echo_only.models.retrieve("claude")


def test_the_openai_sdk_still_gets_openais_format(gw):
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0) as oai:
        models = oai.models.list()
        assert [m.id for m in models.data] == ["claude", "gemini", "gpt", "echo", "dead-claude-then-gpt"]
        assert all(m.object == "model" and m.owned_by == "gw" for m in models.data)
        one = oai.models.retrieve("gpt")
        assert one.id == "gpt" and one.object == "model"
        with pytest.raises(openai.NotFoundError) as exc:
            oai.models.retrieve("no-such-model")
        assert exc.value.body["type"] == "not_found_error"  # the SDK's body is the error object
    resp = httpx.get(gw.url + "/v1/models", headers={"authorization": f"Bearer {KEY}"})
    assert resp.json()["object"] == "list"


def test_a_models_error_follows_the_anthropic_version_header(gw):
    resp = httpx.get(gw.url + "/v1/models", headers={"anthropic-version": "2023-06-01"})
    assert resp.status_code == 401
    assert resp.json()["type"] == "error"
    assert resp.json()["error"]["type"] == "authentication_error"
    resp = httpx.get(gw.url + "/v1/models")
    assert resp.status_code == 401
    assert resp.json()["error"]["type"] == "authentication_error"
    resp = httpx.post(gw.url + "/v1/models/gpt", headers={"x-api-key": KEY})
    assert resp.status_code == 405


# ---------------------------------------------------------------- connectivity checks


def test_head_and_get_of_the_root_answer_200_without_a_key(gw):
    head = httpx.head(gw.url + "/")
    assert head.status_code == 200
    assert head.content == b""
    got = httpx.get(gw.url + "/")
    assert got.status_code == 200
    assert got.json() == {"status": "ok", "service": "gw"}
    assert httpx.post(gw.url + "/").status_code == 405
