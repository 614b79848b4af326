"""The fake Ollama upstream, checked with the official ollama SDK and raw httpx."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import ollama
import pytest

from tests.fakes.ollama_server import OllamaFake

MODEL = "llama3.2"
KEY = "ollama-fake-key-0123456789"


@pytest.fixture(scope="module")
def fake() -> Iterator[OllamaFake]:
    with OllamaFake() as f:
        yield f


@pytest.fixture(scope="module")
def client(fake: OllamaFake) -> Iterator[ollama.Client]:
    c = ollama.Client(host=fake.url)
    yield c
    c.close()


@pytest.fixture
def http(fake: OllamaFake) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=5) as c:
        yield c


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def lines(resp: httpx.Response) -> list[dict]:
    raw = resp.content
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.split(b"\n")[:-1]]


# ------------------------------------------------------------------ the SDK


def test_sdk_chat_answer_with_counts(client, fake):
    fake.reset()
    answer = client.chat(model=MODEL, messages=[{"role": "system", "content": "be brief"}, *user("hello big world")])
    assert answer.message.content == "fake: hello big world"
    assert answer.done and answer.done_reason == "stop"
    assert (answer.prompt_eval_count, answer.eval_count) == (5, 4)
    assert answer.model == MODEL
    sent = fake.requests()[-1]
    assert sent["path"] == "/api/chat"
    assert sent["body"]["stream"] is False  # the SDK says it; the fake would stream otherwise


def test_sdk_chat_stream_word_by_word_counts_on_the_done_line(client):
    parts = list(client.chat(model=MODEL, messages=user("one two three"), stream=True))
    assert [p.message.content for p in parts] == ["fake: ", "one ", "two ", "three", ""]
    assert [p.done for p in parts] == [False, False, False, False, True]
    assert parts[-1].done_reason == "stop" and parts[-1].eval_count == 4
    assert all(p.eval_count is None for p in parts[:-1])


def test_sdk_tool_calls_with_and_without_arguments(client, fake):
    directive = {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "now"}]}
    answer = client.chat(
        model=MODEL,
        messages=user("FAKE " + json.dumps(directive)),
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    )
    calls = answer.message.tool_calls
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("now", {}),
    ]
    assert answer.message.content == ""
    assert fake.requests()[-1]["body"]["tools"][0]["function"]["name"] == "get_weather"


def test_sdk_streamed_tool_calls_come_whole_one_line_each(client):
    directive = {"tool_calls": [{"name": "a"}, {"name": "b", "arguments": {"x": 1}}], "tool_events": "separate"}
    parts = list(client.chat(model=MODEL, messages=user("FAKE " + json.dumps(directive)), stream=True))
    calls = [(c.function.name, dict(c.function.arguments)) for p in parts for c in p.message.tool_calls or ()]
    assert calls == [("a", {}), ("b", {"x": 1})]
    assert parts[-1].done


def test_sdk_tool_results_are_answered_by_name(client):
    messages = [
        *user("weather?"),
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "w", "arguments": {}}}]},
        {"role": "tool", "content": "sunny", "tool_name": "w"},
    ]
    assert client.chat(model=MODEL, messages=messages).message.content == "fake: w=sunny"


def test_sdk_embed(client, fake):
    fake.reset()
    result = client.embed(model="all-minilm", input=["a", "b c"], dimensions=5)
    assert [len(e) for e in result.embeddings] == [5, 5]
    assert result.embeddings[0] != result.embeddings[1]
    assert result.prompt_eval_count == 3
    assert fake.requests()[-1]["body"] == {"model": "all-minilm", "input": ["a", "b c"], "dimensions": 5}


def test_sdk_lists_models_and_version(client, http):
    assert "llama3.2:latest" in [m.model for m in client.list().models]
    assert http.get("/api/version").json() == {"version": "0.12.6"}


def test_sdk_raises_response_error_for_an_unknown_model(client):
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="mistral", messages=user("x"))
    assert info.value.status_code == 404
    assert info.value.error == 'model "mistral" not found, try pulling it first'


def test_sdk_raises_response_error_for_statuses_and_a_mid_stream_error(client):
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model=MODEL, messages=user('FAKE {"status": 503}'))
    assert info.value.status_code == 503 and "server busy" in info.value.error
    got = []
    with pytest.raises(ollama.ResponseError) as mid:
        for part in client.chat(model=MODEL, messages=user('FAKE {"fault": "error_event", "after": 1} a b'), stream=True):
            got.append(part.message.content)
    assert got == ["fake: "]
    assert "unexpected EOF" in mid.value.error


# ------------------------------------------------------------------ raw wire


def test_stream_is_the_default_and_ndjson(http):
    resp = http.post("/api/chat", json={"model": MODEL, "messages": user("a b")})
    assert resp.headers["content-type"] == "application/x-ndjson"
    got = lines(resp)
    assert [g["done"] for g in got] == [False, False, False, True]
    assert set(got[-1]) >= {"done_reason", "total_duration", "load_duration", "prompt_eval_count", "eval_count"}
    whole = http.post("/api/chat", json={"model": MODEL, "messages": user("a b"), "stream": False})
    assert whole.headers["content-type"] == "application/json; charset=utf-8"
    assert whole.json()["message"] == {"role": "assistant", "content": "fake: a b"}


def test_bad_json_and_a_missing_model_are_400(http):
    bad = http.post("/api/chat", content=b"hello", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid character 'h' looking for beginning of value"}
    assert http.post("/api/chat", json={"messages": user("x")}).json() == {"error": "model is required"}


def test_model_names_default_to_the_latest_tag(http):
    assert http.post("/api/chat", json={"model": "llama3.2:latest", "messages": user("x"), "stream": False}).status_code == 200
    assert http.post("/api/chat", json={"model": "qwen3", "messages": user("x")}).status_code == 404  # only qwen3:8b
    assert http.post("/api/chat", json={"model": "bench-ollama", "messages": user("x")}).status_code == 200


def test_an_embedding_model_does_not_chat_and_an_empty_chat_loads(http):
    resp = http.post("/api/chat", json={"model": "all-minilm", "messages": user("x")})
    assert resp.status_code == 400 and "does not support chat" in resp.json()["error"]
    load = http.post("/api/chat", json={"model": MODEL, "messages": []})
    assert load.json()["done_reason"] == "load"


def test_num_predict_cuts_with_length_and_overrides(http):
    answer = http.post("/api/chat", json={"model": MODEL, "messages": user("a b c d"), "stream": False,
                                          "options": {"num_predict": 2}}).json()
    assert answer["message"]["content"] == "fake: a" and answer["done_reason"] == "length"
    steered = http.post("/api/chat", json={"model": MODEL, "stream": False, "messages": user(
        'FAKE {"done_reason": "unload", "counts": false, "thinking": "hmm"} x')}).json()
    assert steered["done_reason"] == "unload"
    assert "prompt_eval_count" not in steered and "eval_count" not in steered
    assert steered["message"]["thinking"] == "hmm"


def test_bad_base64_images_are_refused_like_go_does(http):
    ok = http.post("/api/chat", json={"model": "llava", "stream": False,
                                      "messages": [{"role": "user", "content": "x", "images": ["iVBORw0KGgo="]}]})
    assert ok.status_code == 200
    bad = http.post("/api/chat", json={"model": "llava", "messages": [{"role": "user", "content": "x", "images": ["%%"]}]})
    assert bad.status_code == 400 and "illegal base64" in bad.json()["error"]


@pytest.mark.parametrize("split", [{"split": "bytes"}, {"split": "random", "seed": 3}])
def test_split_writes_reassemble(http, split):
    text = "FAKE " + json.dumps({"content": "héllo wörld 🎉 ok", **split})
    got = lines(http.post("/api/chat", json={"model": MODEL, "messages": user(text)}))
    assert "".join(g["message"]["content"] for g in got) == "héllo wörld 🎉 ok"
    assert got[-1]["done"] is True


def test_mid_stream_faults(http):
    err = lines(http.post("/api/chat", json={"model": MODEL, "messages": user('FAKE {"fault": "error_event"} a b c')}))
    assert [g.get("message", {}).get("content") for g in err[:2]] == ["fake: ", "a "]
    assert err[2] == {"error": "an error was encountered while running the model: unexpected EOF"}
    assert len(err) == 3
    cut = lines(http.post("/api/chat", json={"model": MODEL, "messages": user('FAKE {"fault": "truncate"} a b c')}))
    assert len(cut) == 2 and not any(g["done"] for g in cut)
    garbage = http.post("/api/chat", json={"model": MODEL, "messages": user('FAKE {"fault": "garbage_mid_stream"} a b')})
    assert b"\n{not json\n" in garbage.content


def test_a_key_is_required_when_the_fake_has_one():
    with OllamaFake(api_key=KEY) as locked:
        assert httpx.get(locked.url + "/api/tags").status_code == 401
        assert httpx.get(locked.url + "/api/tags").json() == {"error": "unauthorized"}
        authed = ollama.Client(host=locked.url, headers={"authorization": f"Bearer {KEY}"})
        assert authed.list().models
        authed.close()


# ------------------------------------------------------------------ the mode (POST /_fake/mode)


@pytest.fixture
def mode(fake: OllamaFake) -> Iterator[OllamaFake]:
    """The fake, its mode cleared afterwards whatever the test did."""
    yield fake
    fake.clear_mode()


def test_mode_503_fails_chat_and_the_probes_with_ollamas_error(mode, client, http):
    mode.set_mode(status=503)
    for r in (http.post("/api/chat", json={"model": MODEL, "messages": user("a")}),
              http.get("/api/tags"), http.get("/api/version")):
        assert r.status_code == 503
        assert r.json() == {"error": "server busy, please try again.  maximum pending requests exceeded"}
    with pytest.raises(ollama.ResponseError) as info:
        client.list()
    assert info.value.status_code == 503


def test_mode_times_fails_exactly_that_many_requests(mode, http):
    mode.reset()
    mode.set_mode(status=500, times=2)
    chat = {"model": MODEL, "messages": user("a"), "stream": False}
    codes = [http.get("/api/tags").status_code, http.post("/api/chat", json=chat).status_code]
    codes += [http.post("/api/chat", json=chat).status_code, http.get("/api/version").status_code]
    assert codes == [500, 500, 200, 200]
    assert mode.mode() == {} and mode.stats()["requests"] == 4


def test_a_requests_own_directive_beats_the_mode_and_reset_clears_it(mode, http):
    mode.set_mode(status=503)
    own = http.post("/api/chat", json={"model": MODEL, "messages": user('FAKE {"content": "mine"}'), "stream": False})
    assert own.status_code == 200 and own.json()["message"]["content"] == "mine"
    mode.reset()
    assert http.get("/api/tags").status_code == 200


def test_mode_429_carries_the_given_retry_after(mode, http):
    mode.set_mode(status=429, retry_after="4")
    for r in (http.post("/api/chat", json={"model": MODEL, "messages": user("a")}), http.get("/api/tags")):
        assert r.status_code == 429 and r.headers["retry-after"] == "4"
        assert r.json() == {"error": "too many requests"}


def test_mode_faults_on_the_probes(mode, http):
    mode.set_mode(fault="reset_before_headers", times=1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.get("/api/version")
    mode.set_mode(fault="hang", times=1)
    with pytest.raises(httpx.ReadTimeout):
        http.get("/api/tags", timeout=0.3)
    assert http.get("/api/tags").status_code == 200
