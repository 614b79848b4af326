"""The fake Gemini upstream, checked with the official google-genai SDK and raw httpx."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from google import genai
from google.genai import errors, types

from tests.fakes.gemini_server import GeminiFake
from tests.integration.sse import sse_data

KEY = "AIza-fake-gemini-key-0123456789"
MODEL = "gemini-2.5-flash"


@pytest.fixture(scope="module")
def fake() -> Iterator[GeminiFake]:
    with GeminiFake(api_key=KEY) as f:
        yield f


def sdk(fake: GeminiFake, key: str = KEY) -> genai.Client:
    # base_url replaces https://generativelanguage.googleapis.com/; the SDK adds the version.
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=fake.url, api_version="v1beta"))


@pytest.fixture(scope="module")
def client(fake: GeminiFake) -> Iterator[genai.Client]:
    c = sdk(fake)
    yield c
    c.close()


@pytest.fixture
def http(fake: GeminiFake) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.gemini_base_url, headers={"x-goog-api-key": KEY}, timeout=5) as c:
        yield c


def user(text: str) -> dict:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def stream_events(http: httpx.Client, text: str, model: str = MODEL) -> tuple[httpx.Response, list[dict]]:
    with http.stream("POST", f"/models/{model}:streamGenerateContent?alt=sse", json=user(text)) as resp:
        raw = b"".join(resp.iter_raw())
    return resp, [json.loads(e) for e in sse_data(raw.decode())]


# ------------------------------------------------------------------ the SDK


def test_sdk_plain_answer_with_usage(client, fake):
    fake.reset()
    answer = client.models.generate_content(
        model=MODEL, contents="hello big world", config=types.GenerateContentConfig(system_instruction="be brief")
    )
    assert answer.text == "fake: hello big world"
    assert answer.candidates[0].finish_reason == types.FinishReason.STOP
    assert answer.usage_metadata.prompt_token_count == 5  # "be brief" + "hello big world"
    assert answer.usage_metadata.candidates_token_count == 4
    assert answer.usage_metadata.total_token_count == 9
    assert answer.model_version == MODEL
    sent = fake.requests()[-1]
    assert sent["path"] == f"/v1beta/models/{MODEL}:generateContent"
    assert sent["headers"]["x-goog-api-key"] == KEY
    assert sent["body"]["systemInstruction"]["parts"] == [{"text": "be brief"}]


def test_sdk_stream_word_by_word_finish_on_the_last(client):
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="one two three"))
    assert [c.text for c in chunks] == ["fake: ", "one ", "two ", "three"]
    assert [c.candidates[0].finish_reason for c in chunks][-1] == types.FinishReason.STOP
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].usage_metadata.candidates_token_count == 4


def test_sdk_function_calls_with_a_thought_signature(client, fake):
    directive = {
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "now"}],
        "thought_signature": "c2lnbmF0dXJl",
    }
    answer = client.models.generate_content(
        model=MODEL,
        contents="FAKE " + json.dumps(directive),
        config=types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="get_weather")])]
        ),
    )
    calls = answer.function_calls
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "Paris"}), ("now", None)]
    parts = answer.candidates[0].content.parts
    assert parts[0].thought_signature == b"signature"  # the SDK decodes Google's base64
    assert parts[1].thought_signature is None
    assert fake.requests()[-1]["body"]["tools"] == [{"functionDeclarations": [{"name": "get_weather"}]}]


def test_sdk_embeddings(client, fake):
    fake.reset()
    result = client.models.embed_content(
        model="gemini-embedding-001", contents=["a", "b c"], config=types.EmbedContentConfig(output_dimensionality=5)
    )
    assert [len(e.values) for e in result.embeddings] == [5, 5]
    assert result.embeddings[0].values != result.embeddings[1].values
    sent = fake.requests()[-1]
    assert sent["path"] == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent["body"]["requests"][0]["model"] == "models/gemini-embedding-001"


def test_sdk_lists_models(client):
    assert "models/gemini-2.5-flash" in [m.name for m in client.models.list()]


def test_sdk_sees_error_statuses_with_googles_body(client):
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=MODEL, contents='FAKE {"status": 429}')
    assert info.value.code == 429
    assert info.value.status == "RESOURCE_EXHAUSTED"
    assert info.value.details["error"]["details"][1]["retryDelay"] == "7s"
    with pytest.raises(errors.ServerError) as server:
        client.models.generate_content(model=MODEL, contents='FAKE {"status": 503, "message": "overloaded now"}')
    assert server.value.code == 503 and server.value.message == "overloaded now"


def test_sdk_with_a_wrong_key_gets_api_key_invalid(fake):
    bad = sdk(fake, key="AIza-wrong")  # kept: a dropped client closes its connections
    with pytest.raises(errors.ClientError) as info:
        bad.models.generate_content(model=MODEL, contents="hi")
    bad.close()
    assert info.value.code == 400
    assert info.value.message == "API key not valid. Please pass a valid API key."
    assert info.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"


# ------------------------------------------------------------------ raw wire


def test_missing_key_is_403_and_the_key_query_parameter_works(fake):
    body = user("hi")
    url = fake.gemini_base_url + f"/models/{MODEL}:generateContent"
    missing = httpx.post(url, json=body)
    assert missing.status_code == 403
    assert missing.json()["error"]["status"] == "PERMISSION_DENIED"
    assert httpx.post(url + f"?key={KEY}", json=body).json()["candidates"][0]["content"]["parts"] == [
        {"text": "fake: hi"}
    ]


def test_stream_events_are_crlf_framed_json_without_done(http):
    with http.stream("POST", f"/models/{MODEL}:streamGenerateContent?alt=sse", json=user("a b")) as resp:
        raw = b"".join(resp.iter_raw())
    assert resp.headers["content-type"] == "text/event-stream"
    assert raw.startswith(b"data: {") and raw.endswith(b"}\r\n\r\n")
    assert b"[DONE]" not in raw and b"event:" not in raw
    assert raw.count(b"\r\n\r\n") == 3


def test_models_prefixed_and_tuned_model_paths(http):
    assert http.post(f"/models/{MODEL}:generateContent", json=user("x")).status_code == 200
    assert http.post("/tunedModels/my-tune:generateContent", json=user("x")).status_code == 200
    assert http.post("/models/x:unknownMethod", json=user("x")).status_code == 404


def test_candidate_count_and_max_output_tokens(http):
    body = {**user("one two three four"), "generationConfig": {"candidateCount": 2, "maxOutputTokens": 2}}
    answer = http.post(f"/models/{MODEL}:generateContent", json=body).json()
    assert [c["index"] for c in answer["candidates"]] == [0, 1]
    assert {c["finishReason"] for c in answer["candidates"]} == {"MAX_TOKENS"}
    assert answer["candidates"][1]["content"]["parts"] == [{"text": "fake: one"}]


def test_block_gives_prompt_feedback_and_no_candidates(http):
    answer = http.post(f"/models/{MODEL}:generateContent", json=user('FAKE {"block": "SAFETY"}')).json()
    assert "candidates" not in answer
    assert answer["promptFeedback"]["blockReason"] == "SAFETY"
    _, events = stream_events(http, 'FAKE {"block": "PROHIBITED_CONTENT"}')
    assert len(events) == 1 and events[0]["promptFeedback"]["blockReason"] == "PROHIBITED_CONTENT"


def test_stream_error_event_after_200(http):
    resp, events = stream_events(http, 'FAKE {"fault": "error_event", "after": 2} a b c d')
    assert resp.status_code == 200
    assert [e["candidates"][0]["content"]["parts"][0]["text"] for e in events[:2]] == ["fake: ", "a "]
    assert events[2]["error"]["status"] == "INTERNAL"
    assert len(events) == 3


def test_finish_override_thought_cache_and_repeat(http):
    _, events = stream_events(
        http, 'FAKE {"finish": "SAFETY", "thought": "let me think", "cached": 4, "repeat_finish": true} x'
    )
    assert events[0]["candidates"][0]["content"]["parts"] == [{"text": "let me think", "thought": True}]
    finishes = [e["candidates"][0].get("finishReason") for e in events]
    assert finishes == [None, None, "SAFETY", "SAFETY"]
    usage = events[-1]["usageMetadata"]
    assert usage["cachedContentTokenCount"] == 4 and usage["thoughtsTokenCount"] == 3


def test_split_random_cuts_utf8_and_events_reassemble(http):
    text = 'FAKE {"content": "héllo wörld 🎉 ok", "split": "random", "seed": 3}'
    _, events = stream_events(http, text)
    assert "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events) == "héllo wörld 🎉 ok"


def test_function_response_turn_is_echoed(http):
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "w", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "w", "response": {"t": 1}}}]},
        ]
    }
    answer = http.post(f"/models/{MODEL}:generateContent", json=body).json()
    assert answer["candidates"][0]["content"]["parts"] == [{"text": 'fake: w={"t":1}'}]


# ------------------------------------------------------------------ the mode (POST /_fake/mode)


@pytest.fixture
def mode(fake: GeminiFake) -> Iterator[GeminiFake]:
    """The fake, its mode cleared afterwards whatever the test did."""
    yield fake
    fake.clear_mode()


def test_mode_503_fails_generate_and_the_models_probe_with_googles_error(mode, client, http):
    mode.set_mode(status=503)
    for r in (http.post(f"/models/{MODEL}:generateContent", json=user("hi")), http.get("/models")):
        assert r.status_code == 503
        assert r.json()["error"] == {"code": 503, "message": "The model is overloaded. Please try again later.",
                                     "status": "UNAVAILABLE"}
    with pytest.raises(errors.ServerError):
        client.models.generate_content(model=MODEL, contents="hi")


def test_mode_times_fails_exactly_that_many_requests(mode, http):
    mode.reset()
    mode.set_mode(status=500, times=2)
    codes = [http.get("/models").status_code, http.post(f"/models/{MODEL}:generateContent", json=user("a")).status_code]
    resp, events = stream_events(http, "b c")
    codes += [resp.status_code, http.get(f"/models/{MODEL}").status_code]
    assert codes == [500, 500, 200, 200] and events
    assert mode.mode() == {} and mode.stats()["requests"] == 4


def test_a_requests_own_directive_beats_the_mode_and_reset_clears_it(mode, http):
    mode.set_mode(status=503)
    own = http.post(f"/models/{MODEL}:generateContent", json=user('FAKE {"content": "mine"}'))
    assert own.status_code == 200 and own.json()["candidates"][0]["content"]["parts"][0]["text"] == "mine"
    mode.reset()
    assert http.post(f"/models/{MODEL}:generateContent", json=user("a")).status_code == 200


def test_mode_429_carries_the_given_retry_after(mode, http):
    mode.set_mode(status=429, retry_after="2")
    for r in (http.post(f"/models/{MODEL}:generateContent", json=user("a")), http.get("/models")):
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        assert r.json()["error"]["details"][1]["retryDelay"] == "2s"
    mode.clear_mode()
    r = http.post(f"/models/{MODEL}:generateContent", json=user('FAKE {"status": 429}'))
    assert r.headers["retry-after"] == "7" and r.json()["error"]["details"][1]["retryDelay"] == "7s"


def test_mode_faults_on_the_models_probe_and_embeddings(mode, http):
    mode.set_mode(fault="close_before_headers", times=1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.get("/models")
    mode.set_mode(status=503, times=1)
    embed = {"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "x"}]}}]}
    assert http.post("/models/gemini-embedding-001:batchEmbedContents", json=embed).status_code == 503
    assert http.post("/models/gemini-embedding-001:batchEmbedContents", json=embed).status_code == 200


def test_sdk_counts_tokens(client, fake):
    fake.reset()
    count = client.models.count_tokens(model=MODEL, contents="hello big world")
    assert count.total_tokens == 3
    assert fake.requests()[-1]["path"] == f"/v1beta/models/{MODEL}:countTokens"


def test_count_tokens_takes_a_generate_content_request_with_its_system_and_tools(http):
    request = {
        "model": f"models/{MODEL}",
        "contents": [{"role": "user", "parts": [{"text": "hello big world"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "The weather"}]}],
    }
    resp = http.post(f"/models/{MODEL}:countTokens", json={"generateContentRequest": request})
    assert resp.status_code == 200, resp.text
    assert resp.json()["totalTokens"] == 3 + 2 + 1 + 2
    both = {"generateContentRequest": request, "contents": request["contents"]}
    assert http.post(f"/models/{MODEL}:countTokens", json=both).status_code == 400
    no_model = {"generateContentRequest": {"contents": request["contents"]}}
    assert http.post(f"/models/{MODEL}:countTokens", json=no_model).status_code == 400
