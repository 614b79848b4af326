"""The fake OpenAI/Azure upstream, checked with the official SDK and raw httpx."""

from __future__ import annotations

import json
import socket
import time

import httpx
import openai
import pytest

from tests.fakes.runner import FakeUpstream

KEY = "sk-fake-test-key"
MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello big world"}]


@pytest.fixture(scope="module")
def fake():
    with FakeUpstream(api_key=KEY) as f:
        yield f


@pytest.fixture
def client(fake):
    with openai.OpenAI(base_url=fake.openai_base_url, api_key=KEY, max_retries=0, timeout=5) as c:
        yield c


@pytest.fixture
def http(fake):
    with httpx.Client(base_url=fake.url, headers={"authorization": f"Bearer {KEY}"}, timeout=5) as c:
        yield c


def sse_events(raw: bytes) -> list[str]:
    """A reference SSE parser: the data of each event, comments dropped."""
    text = raw.decode("utf-8")
    events, data = [], []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line == "":
            if data:
                events.append("\n".join(data))
            data = []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                data.append(value)
    return events


def normalized(events: list[str]) -> list:
    out = []
    for e in events:
        if e == "[DONE]":
            out.append(e)
            continue
        obj = json.loads(e)
        obj.pop("id", None)
        obj.pop("created", None)
        out.append(obj)
    return out


def stream_raw(http: httpx.Client, fake_field: dict | None = None, **body) -> tuple[httpx.Response, bytes]:
    payload = {"model": "gpt-4o-mini", "messages": MSGS, "stream": True, **body}
    if fake_field is not None:
        payload["fake"] = fake_field
    with http.stream("POST", "/v1/chat/completions", json=payload) as r:
        pieces = list(r.iter_raw())
    return r, b"".join(pieces)


# ------------------------------------------------------------------ the SDK


def test_sdk_non_stream_create_answers_fake_plus_last_user_message(client):
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSGS)
    assert raw.headers["x-request-id"].startswith("req_")
    c = raw.parse()
    assert c.id.startswith("chatcmpl-")
    assert c.object == "chat.completion"
    assert c.model == "gpt-4o-mini"
    assert c.choices[0].message.role == "assistant"
    assert c.choices[0].message.content == "fake: hello big world"
    assert c.choices[0].finish_reason == "stop"
    assert (c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens) == (5, 4, 9)


def test_sdk_list_content_parts_are_joined(client):
    msgs = [{"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}]
    c = client.chat.completions.create(model="gpt-4o", messages=msgs)
    assert c.choices[0].message.content == "fake: one two"


@pytest.mark.parametrize("include_usage", [False, True])
def test_sdk_stream_has_role_first_one_finish_and_usage_last(client, include_usage):
    kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
    with client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True, **kwargs) as s:
        chunks = list(s)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "fake: hello big world"
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finishes == ["stop"]
    if include_usage:
        assert chunks[-1].choices == []
        assert chunks[-1].usage.completion_tokens == 4
        assert all(ch.usage is None for ch in chunks[:-1])
    else:
        assert all(ch.usage is None for ch in chunks)


def test_sdk_max_tokens_truncates_with_finish_reason_length(client):
    c = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=2)
    assert c.choices[0].message.content == "fake: hello"
    assert c.choices[0].finish_reason == "length"
    assert c.usage.completion_tokens == 2
    with client.chat.completions.create(
        model="gpt-4o-mini", messages=MSGS, max_completion_tokens=3, stream=True
    ) as s:
        chunks = list(s)
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "fake: hello big"
    assert chunks[-1].choices[0].finish_reason == "length"


def test_sdk_status_429_is_rate_limit_error_with_retry_after(client):
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="m", messages=MSGS, extra_body={"fake": {"status": 429}})
    assert e.value.response.headers["retry-after"] == "1"
    assert e.value.body["type"] == "rate_limit_error"
    assert e.value.body["message"] == "fake upstream error 429"


def test_sdk_status_400_and_missing_messages_are_bad_request(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="m", messages=MSGS, extra_body={"fake": {"status": 400, "message": "nope"}}
        )
    assert e.value.body == {"message": "nope", "type": "invalid_request_error", "param": None, "code": None}
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="m", messages=[])


def test_sdk_wrong_key_is_authentication_error(fake):
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-wrong", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError) as e:
            c.chat.completions.create(model="m", messages=MSGS)
    assert e.value.body["code"] == "invalid_api_key"
    assert "sk-wrong" not in e.value.message


def test_sdk_azure_answers_with_the_deployment_as_model(fake):
    with openai.AzureOpenAI(azure_endpoint=fake.url, api_version="2024-10-21", api_key=KEY, max_retries=0) as c:
        r = c.chat.completions.create(model="my-deploy", messages=MSGS)
        with c.chat.completions.create(
            model="my-deploy", messages=MSGS, stream=True, stream_options={"include_usage": True}
        ) as s:
            chunks = list(s)
    assert r.model == "my-deploy"
    assert r.choices[0].message.content == "fake: hello big world"
    assert chunks[-1].usage.total_tokens == 9
    last = fake.requests()[-1]
    assert last["path"] == "/openai/deployments/my-deploy/chat/completions"
    assert last["query"] == {"api-version": "2024-10-21"}
    assert last["headers"]["api-key"] == KEY


def test_sdk_azure_wrong_key_is_authentication_error(fake):
    with openai.AzureOpenAI(azure_endpoint=fake.url, api_version="2024-10-21", api_key="bad", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError):
            c.chat.completions.create(model="my-deploy", messages=MSGS)


def test_azure_without_api_version_is_404_resource_not_found(http):
    r = http.post("/openai/deployments/d/chat/completions", json={"messages": MSGS}, headers={"api-key": KEY})
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "404", "message": "Resource not found"}}


def test_sdk_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o-mini" in ids and len(ids) >= 2


def test_sdk_tool_calls_whole_and_streamed(client):
    calls = [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "now", "arguments": ""}]
    r = client.chat.completions.create(model="gpt-4o", messages=MSGS, extra_body={"fake": {"tool_calls": calls}})
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [(c.function.name, c.function.arguments) for c in choice.message.tool_calls] == [
        ("get_weather", '{"city":"Paris"}'),
        ("now", ""),
    ]
    assert len({c.id for c in choice.message.tool_calls}) == 2
    with client.chat.completions.stream(
        model="gpt-4o", messages=MSGS, extra_body={"fake": {"tool_calls": calls}}
    ) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls
    assert [(c.function.name, c.function.arguments) for c in streamed] == [
        ("get_weather", '{"city":"Paris"}'),
        ("now", ""),
    ]
    assert len({c.id for c in streamed}) == 2
    assert final.choices[0].finish_reason == "tool_calls"


def test_sdk_legacy_completions_whole_and_streamed(client):
    r = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="say this", max_tokens=2)
    assert r.object == "text_completion"
    assert r.choices[0].text == "fake: say"
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 2
    parts = list(
        client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="say this", stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].text for c in parts if c.choices) == "fake: say this"
    assert [c.choices[0].finish_reason for c in parts if c.choices][-1] == "stop"
    assert parts[-1].choices == [] and parts[-1].usage.total_tokens == 5


def test_sdk_embeddings_base64_default(client):
    r = client.embeddings.create(model="text-embedding-3-small", input=["a b", "c"])
    assert [d.index for d in r.data] == [0, 1]
    assert len(r.data[0].embedding) == 8
    assert r.usage.prompt_tokens == 3


# ------------------------------------------------------------------ raw HTTP


@pytest.mark.parametrize(
    ("status", "type_"),
    [(401, "authentication_error"), (403, "permission_error"), (404, "not_found_error"),
     (422, "invalid_request_error"), (500, "server_error"), (503, "server_error")],
)
def test_status_gives_openai_error_envelope(http, status, type_):
    r = http.post("/v1/chat/completions", json={"model": "m", "messages": MSGS, "fake": {"status": status}})
    assert r.status_code == status
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == type_
    assert r.headers["x-request-id"]


def test_body_not_json_is_400(http):
    r = http.post("/v1/chat/completions", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_missing_bearer_is_401(fake):
    r = httpx.post(fake.url + "/v1/chat/completions", json={"model": "m", "messages": MSGS})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"


def test_stream_wire_format_is_openais(http):
    r, raw = stream_raw(http, stream_options={"include_usage": True})
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["transfer-encoding"] == "chunked"
    assert raw.endswith(b"data: [DONE]\n\n")
    events = sse_events(raw)
    assert raw == b"".join(b"data: " + e.encode() + b"\n\n" for e in events)
    objs = [json.loads(e) for e in events[:-1]]
    assert all(o["object"] == "chat.completion.chunk" and "usage" in o for o in objs)
    assert [o["choices"][0]["delta"] for o in objs[:-1]] == [
        {"role": "assistant", "content": ""},
        {"content": "fake: "}, {"content": "hello "}, {"content": "big "}, {"content": "world"}, {},
    ]


@pytest.mark.parametrize(
    "variant",
    [
        {"split": "bytes"},
        {"split": "random", "seed": 1},
        {"split": "random", "seed": 7, "crlf": True, "comments": True, "multiline": True},
        {"crlf": True},
        {"comments": True},
        {"multiline": True},
        {"chunk_delay_s": 0.001},
    ],
)
def test_split_and_framing_variants_parse_to_the_plain_events(http, variant):
    body = {"stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "héllo wörld ✓ done"}]}
    _, plain = stream_raw(http, **body)
    _, odd = stream_raw(http, variant, **body)
    assert odd != plain
    assert normalized(sse_events(odd)) == normalized(sse_events(plain))


def test_crlf_and_multiline_really_change_the_framing(http):
    _, raw = stream_raw(http, {"crlf": True, "multiline": True, "comments": True})
    assert b"\r\n\r\n" in raw and b"\ndata: " in raw and b": keep-alive" in raw
    assert b"\n\n" not in raw.replace(b"\r\n", b"")


def test_chunks_and_content_control_the_answer(http):
    _, raw = stream_raw(http, {"chunks": 3})
    objs = normalized(sse_events(raw))[1:-2]
    assert [o["choices"][0]["delta"]["content"] for o in objs] == ["w0 ", "w1 ", "w2"]
    r = http.post("/v1/chat/completions", json={"model": "m", "messages": MSGS, "fake": {"content": "exact  text"}})
    assert r.json()["choices"][0]["message"]["content"] == "exact  text"


def test_delay_s_delays_the_headers(http):
    t0 = time.monotonic()
    r = http.post("/v1/chat/completions", json={"model": "m", "messages": MSGS, "fake": {"delay_s": 0.2}})
    assert r.status_code == 200 and time.monotonic() - t0 >= 0.2


def test_reset_before_headers_is_a_connection_error(http):
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.post("/v1/chat/completions", json={"model": "m", "messages": MSGS,
                                                 "fake": {"fault": "reset_before_headers"}})


def test_close_before_headers_is_a_protocol_error(http):
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/v1/chat/completions", json={"model": "m", "messages": MSGS,
                                                 "fake": {"fault": "close_before_headers"}})


def test_hang_times_out_and_counts_the_disconnect(fake):
    before = fake.stats()["client_disconnects"]
    with httpx.Client(timeout=httpx.Timeout(5, read=0.3)) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.post(fake.url + "/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"},
                   json={"model": "m", "messages": MSGS, "fake": {"fault": "hang"}})
    fake.wait_for(lambda s: s["client_disconnects"] == before + 1)


def read_stream_until_error(fake, fault: dict, read_timeout: float = 5) -> tuple[bytes, Exception | None]:
    got = b""
    with httpx.Client(timeout=httpx.Timeout(5, read=read_timeout)) as c:
        try:
            with c.stream("POST", fake.url + "/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"},
                          json={"model": "m", "messages": MSGS, "stream": True, "fake": fault}) as r:
                assert r.status_code == 200
                for piece in r.iter_raw():
                    got += piece
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.ReadTimeout) as e:
            return got, e
    return got, None


def contents(raw: bytes) -> list[str]:
    out = []
    for e in sse_events(raw):
        try:
            obj = json.loads(e)
        except ValueError:
            continue
        if obj.get("choices") and "content" in obj["choices"][0]["delta"]:
            out.append(obj["choices"][0]["delta"]["content"])
    return out


def test_reset_mid_stream_after_k_chunks(fake):
    got, err = read_stream_until_error(fake, {"fault": "reset_mid_stream", "after": 1})
    assert isinstance(err, (httpx.RemoteProtocolError, httpx.ReadError))
    assert contents(got) == ["", "fake: "]


def test_stall_mid_stream_times_out_and_counts_the_disconnect(fake):
    before = fake.stats()["client_disconnects"]
    got, err = read_stream_until_error(fake, {"fault": "stall_mid_stream"}, read_timeout=0.3)
    assert isinstance(err, httpx.ReadTimeout)
    assert contents(got) == ["", "fake: ", "hello "]
    fake.wait_for(lambda s: s["client_disconnects"] == before + 1)


def test_garbage_mid_stream_then_done(fake):
    got, err = read_stream_until_error(fake, {"fault": "garbage_mid_stream"})
    assert err is None
    events = sse_events(got)
    assert "{not json" in events and events[-1] == "[DONE]"
    assert "".join(contents(got)) == "fake: hello big world"


def test_error_event_ends_the_response_without_done(fake):
    got, err = read_stream_until_error(fake, {"fault": "error_event", "after": 3})
    assert err is None
    events = sse_events(got)
    assert json.loads(events[-1]) == {"error": {"message": "fake mid-stream error", "type": "server_error",
                                                "param": None, "code": None}}
    assert "[DONE]" not in events and len(contents(got)) == 4


def test_truncate_ends_cleanly_without_done_or_finish(fake):
    got, err = read_stream_until_error(fake, {"fault": "truncate"})
    assert err is None
    assert "[DONE]" not in sse_events(got) and b"finish_reason\":\"stop" not in got
    assert contents(got) == ["", "fake: ", "hello "]


def test_client_leaving_a_slow_stream_counts_a_disconnect(fake):
    before = fake.stats()
    with httpx.Client(timeout=5) as c:
        with c.stream("POST", fake.url + "/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"},
                      json={"model": "m", "messages": MSGS, "stream": True,
                            "fake": {"chunks": 50, "chunk_delay_s": 0.05}}) as r:
            next(r.iter_raw())
    fake.wait_for(lambda s: s["client_disconnects"] == before["client_disconnects"] + 1
                  and s["streams_started"] == before["streams_started"] + 1
                  and s["streams_completed"] == before["streams_completed"])


def test_keep_alive_chunked_request_body_and_connection_close(fake):
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "chunky"}]}).encode()
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + KEY.encode()
           + b"\r\ntransfer-encoding: chunked\r\n\r\n")
    half = len(body) // 2
    req += b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half, body[half:])
    last = req.replace(b"host: x\r\n", b"host: x\r\nconnection: close\r\n")
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as s:
        s.sendall(req)
        first = b""
        while b"fake: chunky" not in first:
            first += s.recv(65536)
        s.sendall(last)  # same connection: keep-alive
        rest = b""
        while chunk := s.recv(65536):  # the server closes after this one
            rest += chunk
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n") and b"connection: close" in rest and b"fake: chunky" in rest


def test_recording_and_reset(fake, http):
    http.post("/v1/chat/completions?x=1", json={"model": "m", "messages": MSGS, "fake": {"content": "hi"}},
              headers={"X-Custom": "Yes"})
    req = fake.requests()[-1]
    assert req["method"] == "POST" and req["path"] == "/v1/chat/completions" and req["query"] == {"x": "1"}
    assert req["headers"]["x-custom"] == "Yes"
    assert req["body"]["fake"] == {"content": "hi"}
    assert fake.stats()["requests"] >= 1
    fake.reset()
    assert fake.requests() == []
    assert fake.stats() == {"requests": 0, "streams_started": 0, "streams_completed": 0, "client_disconnects": 0}
    stream_raw(http)
    assert fake.stats()["streams_completed"] == 1 and len(fake.requests()) == 1


@pytest.mark.parametrize("fault", ["reset_mid_stream", "truncate"])
def test_non_stream_faults_cut_the_body_short(http, fault):
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.post("/v1/chat/completions", json={"model": "m", "messages": MSGS, "fake": {"fault": fault}})


def test_non_stream_garbage_is_a_200_that_is_not_json(http):
    r = http.post("/v1/chat/completions",
                  json={"model": "m", "messages": MSGS, "fake": {"fault": "garbage_mid_stream"}})
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()


# ------------------------------------------------------------------ the mode (POST /_fake/mode)


@pytest.fixture
def mode(fake):
    """The fake, its mode cleared afterwards whatever the test did."""
    yield fake
    fake.clear_mode()


def chat_body(**extra) -> dict:
    return {"model": "gpt-4o-mini", "messages": MSGS, **extra}


def test_mode_503_fails_chat_and_the_models_probe_with_openais_error(mode, http):
    assert mode.set_mode(status=503) == {"status": 503}
    assert mode.mode() == {"status": 503}
    for r in (http.post("/v1/chat/completions", json=chat_body()), http.get("/v1/models")):
        assert r.status_code == 503
        assert r.json()["error"]["type"] == "server_error"
    with openai.OpenAI(base_url=mode.openai_base_url, api_key=KEY, max_retries=0, timeout=5) as c:
        with pytest.raises(openai.InternalServerError):
            c.models.list()
    azure = http.get("/openai/models", params={"api-version": "2024-10-21"}, headers={"api-key": KEY})
    assert azure.status_code == 503


def test_mode_times_fails_exactly_that_many_requests(mode, http):
    mode.reset()
    mode.set_mode(status=500, times=2)
    assert mode.mode() == {"status": 500, "times": 2}
    codes = [http.post("/v1/chat/completions", json=chat_body()).status_code for _ in range(2)]
    codes.append(http.get("/v1/models").status_code)
    codes.append(http.post("/v1/chat/completions", json=chat_body(stream=True)).status_code)
    assert codes == [500, 500, 200, 200]
    assert mode.mode() == {}
    assert mode.stats()["requests"] == 4 and len(mode.requests()) == 4  # admin routes are not recorded


def test_a_requests_own_directive_beats_the_mode(mode, http):
    mode.set_mode(status=503)
    own = http.post("/v1/chat/completions", json=chat_body(fake={"content": "mine"}))
    assert own.status_code == 200 and own.json()["choices"][0]["message"]["content"] == "mine"
    assert http.post("/v1/chat/completions", json=chat_body(fake={})).status_code == 200
    text = [{"role": "user", "content": 'FAKE {"status": 418}'}]
    assert http.post("/v1/chat/completions", json={"model": "m", "messages": text}).status_code == 418
    assert mode.mode() == {"status": 503}  # untouched by requests that brought their own


def test_reset_clears_the_mode(mode, http):
    mode.set_mode(fault="reset_before_headers")
    mode.reset()
    assert mode.mode() == {}
    assert http.post("/v1/chat/completions", json=chat_body()).status_code == 200


def test_mode_429_carries_the_given_retry_after(mode, http):
    mode.set_mode(status=429, retry_after="3")
    for r in (http.post("/v1/chat/completions", json=chat_body()), http.get("/v1/models")):
        assert r.status_code == 429 and r.headers["retry-after"] == "3"
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
    mode.clear_mode()
    own = http.post("/v1/chat/completions", json=chat_body(fake={"status": 429}))
    assert own.headers["retry-after"] == "1"


@pytest.mark.parametrize("fault", ["reset_before_headers", "close_before_headers"])
def test_mode_faults_before_the_headers_on_chat_and_the_probe(mode, http, fault):
    mode.set_mode(fault=fault)
    for send in (lambda: http.get("/v1/models"), lambda: http.post("/v1/chat/completions", json=chat_body())):
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            send()


def test_mode_hang_and_delay_on_the_probe(mode, http):
    mode.set_mode(fault="hang", times=1)
    with pytest.raises(httpx.ReadTimeout):
        http.get("/v1/models", timeout=0.3)
    mode.set_mode(delay_s=0.3, times=1)
    t0 = time.monotonic()
    assert http.get("/v1/models").status_code == 200
    assert time.monotonic() - t0 >= 0.3


def test_mode_mid_stream_fault_breaks_a_stream(mode, http):
    mode.set_mode(fault="error_event", after=1)
    r, raw = stream_raw(http)
    events = sse_events(raw)
    assert r.status_code == 200 and "[DONE]" not in events
    assert json.loads(events[-1])["error"]["type"] == "server_error"


def test_a_bad_mode_is_refused(mode, http):
    for bad in ({"fault": "explode"}, {"times": 0}, {"status": 200}):
        r = http.post("/_fake/mode", json=bad)
        assert r.status_code == 400, bad
    assert http.post("/_fake/mode", content=b"[1]").status_code == 400
    assert mode.mode() == {}


def test_sdk_azure_lists_models(fake):
    with openai.AzureOpenAI(azure_endpoint=fake.url, api_version="2024-10-21", api_key=KEY, max_retries=0) as c:
        models = c.models.list()
        ids = [m.id for m in models]
    assert "gpt-4o-mini-2024-07-18" in ids
    sent = fake.requests()[-1]
    assert sent["path"] == "/openai/models" and sent["query"] == {"api-version": "2024-10-21"}
    first = models.data[0].model_dump()
    assert first["object"] == "model" and first["status"] == "succeeded" and "capabilities" in first
    with openai.AzureOpenAI(azure_endpoint=fake.url, api_version="2024-10-21", api_key="bad", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError):
            c.models.list()


# ------------------------------------------------------------------ Azure's content-filter annotations

EMPTY_IDENTITY = {"object": "", "id": "", "model": "", "created": 0}


def azure_post(fake, op: str, body: dict) -> httpx.Response:
    return httpx.post(
        f"{fake.url}/openai/deployments/my-deploy/{op}",
        params={"api-version": "2024-10-21"}, headers={"api-key": KEY}, json=body, timeout=5,
    )  # fmt: skip


@pytest.mark.parametrize(("op", "body"), [
    ("chat/completions", {"messages": MSGS}),
    ("completions", {"prompt": "hello big world"}),
])  # fmt: skip
def test_azure_streams_begin_with_the_prompt_filter_chunk_and_annotate_every_choice(fake, op, body):
    r = azure_post(fake, op, {**body, "stream": True, "stream_options": {"include_usage": True}})
    events = sse_events(r.content)
    assert events[-1] == "[DONE]"
    first, *rest = [json.loads(e) for e in events[:-1]]
    assert {k: first[k] for k in EMPTY_IDENTITY} == EMPTY_IDENTITY and first["choices"] == []
    assert first["prompt_filter_results"][0]["content_filter_results"]["jailbreak"] == {
        "filtered": False, "detected": False}  # fmt: skip
    assert list(first) == sorted(first)  # Azure sends its keys sorted
    *answer, usage = rest
    expected = "chat.completion.chunk" if op == "chat/completions" else "text_completion"
    assert all(o["object"] == expected and o["id"] and o["created"] > 0 for o in rest)
    assert all("content_filter_results" in c for o in answer for c in o["choices"])
    assert answer[0]["choices"][0]["content_filter_results"] == {}
    assert answer[1]["choices"][0]["content_filter_results"]["violence"] == {"filtered": False, "severity": "safe"}
    assert answer[-1]["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] > 0


def test_azure_whole_answers_carry_the_prompt_and_the_content_filter_results(fake):
    for op, body in (("chat/completions", {"messages": MSGS}), ("completions", {"prompt": "hello"})):
        answer = azure_post(fake, op, body).json()
        assert answer["prompt_filter_results"][0]["prompt_index"] == 0
        results = answer["choices"][0]["content_filter_results"]
        assert results["protected_material_text"] == {"filtered": False, "detected": False}
        assert results["hate"] == {"filtered": False, "severity": "safe"}


def test_azure_async_filter_sends_annotation_chunks_without_delta(fake):
    r = azure_post(fake, "chat/completions", {"messages": MSGS, "stream": True, "fake": {"azure_filter": "async"}})
    objs = [json.loads(e) for e in sse_events(r.content)[:-1]]
    annotations = [i for i, o in enumerate(objs) if o["object"] == ""]
    # the prompt filter chunk, one after half of the content, one after the finish chunk
    assert annotations == [0, 4, 8] and len(objs) == 9
    for i in annotations[1:]:
        assert {k: objs[i][k] for k in EMPTY_IDENTITY} == EMPTY_IDENTITY
        (choice,) = objs[i]["choices"]
        assert "delta" not in choice and choice["finish_reason"] is None
        assert choice["content_filter_offsets"]["start_offset"] == 0
    assert objs[8]["choices"][0]["content_filter_offsets"]["end_offset"] == len("fake: hello big world")
    assert objs[7]["choices"][0]["finish_reason"] == "stop"
    content = [o for o in objs if o["object"] and o["choices"][0]["delta"].get("content")]
    assert all("content_filter_results" not in o["choices"][0] for o in content)


def test_the_openai_routes_have_no_annotations(http):
    _, raw = stream_raw(http)
    assert b"filter" not in raw
    assert b"filter" not in http.post("/v1/chat/completions", json={"model": "m", "messages": MSGS}).content


def test_sdk_azure_stream_text_is_whole_after_the_prompt_filter_chunk(fake):
    with openai.AzureOpenAI(azure_endpoint=fake.url, api_version="2024-10-21", api_key=KEY, max_retries=0) as c:
        chunks = list(c.chat.completions.create(model="my-deploy", messages=MSGS, stream=True))
    assert chunks[0].choices == [] and chunks[0].object == ""
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks[1:]) == "fake: hello big world"


def test_quote_tools_scripts_a_tool_round_trip(client):
    """One directive for both turns: tool calls first, then the tool's result quoted."""
    script = {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}], "quote_tools": True}
    first = client.chat.completions.create(model="gpt-4o", messages=MSGS, extra_body={"fake": script})
    [call] = first.choices[0].message.tool_calls
    follow = MSGS + [
        {"role": "assistant", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "18C"},
    ]
    second = client.chat.completions.create(model="gpt-4o", messages=follow, extra_body={"fake": script})
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == f"fake: {call.id}=18C"
    assert second.choices[0].message.tool_calls is None
