"""Hypothesis posts random and malformed requests to a running gw.

Properties: never a 5xx (model ``echo`` has no upstream that could fail), every
answer is JSON or, for a valid stream request, an SSE stream ending in
``[DONE]``; errors are in the OpenAI envelope; valid requests succeed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import APP_KEY, ECHO_KEY, Gateway
from tests.integration.sse import sse_data

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"
AUTH = {"authorization": f"Bearer {APP_KEY}"}
MODELS = {"gpt", "azure-gpt", "wrong-creds", "dead-only", "dead-then-up", "echo"}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def http(gw_std: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw_std.url, timeout=10) as client:
        yield client


# ---------------------------------------------------------------- strategies

# Text without lone surrogates: a body built from it is always valid UTF-8 JSON.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
int64 = st.integers(-(2**63), 2**63 - 1)
scalars = st.none() | st.booleans() | int64 | st.floats(allow_nan=False, allow_infinity=False) | text
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12
)
# Anything JSON can hold, lone surrogates and huge integers included.
wild_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=16,
)

content_parts = st.lists(
    st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "other"]), "text": text | json_values}),
    max_size=3,
)
good_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", "developer"]),
     "content": text | content_parts | st.none()}
)
any_message = good_message | st.fixed_dictionaries({"role": json_values, "content": json_values}) | json_values
good_messages = st.lists(good_message, min_size=1, max_size=4)
odd_messages = st.lists(any_message, max_size=4) | json_values
odd_model = (text | json_values).filter(lambda v: not (isinstance(v, str) and v in MODELS))
max_tokens = st.integers(-3, 40) | int64 | st.floats(allow_nan=False, allow_infinity=False) | json_values
stream_options = st.fixed_dictionaries({"include_usage": st.booleans() | json_values}) | json_values


@st.composite
def chat_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid echo request, then each of model/messages/stream broken (dropped
    or replaced by anything) one time in four: about half stay valid."""
    body: dict[str, Any] = {"model": "echo", "messages": draw(good_messages)}
    if draw(st.booleans()):
        body["stream"] = draw(st.booleans() | st.none())
    for name, values in (("stream_options", stream_options), ("max_tokens", max_tokens),
                         ("max_completion_tokens", max_tokens), ("temperature", json_values)):
        if draw(st.booleans()):
            body[name] = draw(values)
    for name, odd in (("model", odd_model), ("messages", odd_messages), ("stream", json_values)):
        if draw(st.sampled_from(range(4))) == 3:
            if draw(st.booleans()):
                body.pop(name, None)
            else:
                body[name] = draw(odd)
    return body


def is_valid(body: dict[str, Any]) -> bool:
    """What SPEC §4 says gw must take (the echo backend copes with any other field).

    ``"stream": null`` counts as not streaming, as OpenAI's API takes it.
    """
    msgs = body.get("messages")
    stream = body.get("stream")
    return (
        body.get("model") == "echo"
        and isinstance(msgs, list)
        and bool(msgs)
        and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in msgs)
        and (stream is None or isinstance(stream, bool))
    )


# ---------------------------------------------------------------- checks


def check_error(resp: httpx.Response) -> dict[str, Any]:
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers.get("x-request-id")
    body = resp.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert error["param"] is None or isinstance(error["param"], str)
    assert error["code"] is None or isinstance(error["code"], str)
    return error


def check_answer(resp: httpx.Response) -> None:
    """Any answer: never a 5xx; JSON, or an SSE stream; errors in the envelope."""
    assert resp.status_code < 500, (resp.status_code, resp.text)
    assert resp.headers.get("x-request-id")
    if resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream"):
        events = sse_data(resp.text)
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        finishes = [ch["finish_reason"] for c in chunks for ch in c["choices"] if ch.get("finish_reason")]
        assert len(finishes) == 1
    elif resp.status_code == 200:
        assert resp.json()["object"] == "chat.completion"
    else:
        check_error(resp)


# ---------------------------------------------------------------- properties


@FUZZ
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_are_never_a_server_error(http, raw):
    resp = http.post(CHAT, content=raw, headers=AUTH)
    check_answer(resp)
    if resp.status_code != 200:
        assert resp.status_code == 400, resp.text


@FUZZ
@given(value=wild_values)
def test_arbitrary_json_values_are_never_a_server_error(http, value):
    raw = json.dumps(value).encode()  # ASCII: lone surrogates become \ud800 escapes
    resp = http.post(CHAT, content=raw, headers=AUTH)
    check_answer(resp)
    if not isinstance(value, dict):
        assert resp.status_code == 400
        assert check_error(resp)["type"] == "invalid_request_error"


@FUZZ
@given(body=chat_bodies(), extra=st.dictionaries(text, json_values, max_size=3))
def test_requests_around_the_valid_shape_succeed_or_fail_cleanly(http, body, extra):
    body = {**extra, **body}
    resp = http.post(CHAT, content=json.dumps(body, ensure_ascii=False).encode(), headers=AUTH)
    check_answer(resp)
    event(f"{resp.status_code} {'valid' if is_valid(body) else 'invalid'}")
    wants_stream = body.get("stream") is True
    if is_valid(body):
        assert resp.status_code == 200, resp.text
        is_sse = resp.headers["content-type"].startswith("text/event-stream")
        assert is_sse == wants_stream
        if wants_stream:
            options = body.get("stream_options")
            asked = isinstance(options, dict) and options.get("include_usage") is True
            chunks = [json.loads(e) for e in sse_data(resp.text)[:-1]]
            usage = [c for c in chunks if not c["choices"]]
            assert len(usage) == (1 if asked else 0)
            if asked:
                assert chunks[-1] is usage[0]
    elif body.get("model") == "echo" or not isinstance(body.get("model"), str):
        assert resp.status_code == 400, resp.text
    else:
        assert resp.status_code in (400, 404), resp.text


def test_deeply_nested_json_is_a_400_not_a_crash(http):
    for raw in (b"[" * 60_000, b'{"a":' * 12_000, b"[" * 1000 + b"]" * 1000):  # under max_body_bytes
        resp = http.post(CHAT, content=raw, headers=AUTH)
        assert resp.status_code == 400, resp.text
        check_error(resp)


# ---------------------------------------------------------------- headers

header_bytes = st.binary(max_size=300).map(
    lambda b: bytes(c for c in b if c == 0x09 or 0x20 <= c <= 0x7E or c >= 0x80).strip(b" \t")
)
sane_id = re.compile(r"[\x21-\x7e]{1,128}")


@FUZZ
@given(request_id=header_bytes | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=100,
                                            max_size=200).map(str.encode))
def test_any_client_request_id_gets_a_sane_request_id_back(http, request_id):
    resp = http.post(CHAT, json={"model": "echo", "messages": [{"role": "user", "content": "hi"}]},
                     headers={**AUTH, "x-request-id": request_id})
    assert resp.status_code == 200, resp.text
    echoed = resp.headers["x-request-id"]
    assert sane_id.fullmatch(echoed), echoed
    if sane_id.fullmatch(request_id.decode("latin-1")):
        assert echoed == request_id.decode()


def test_long_non_ascii_and_spaced_request_ids_are_replaced_by_fresh_ones(http):
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    seen = set()
    for bad in ("x" * 129, "héllo".encode(), "with space", "a" * 10_000, "日本語".encode()):
        for key in (APP_KEY, "wrong-key"):  # on answers and on gw's own errors
            resp = http.post(CHAT, json=body, headers={"authorization": f"Bearer {key}", "x-request-id": bad})
            echoed = resp.headers["x-request-id"]
            assert sane_id.fullmatch(echoed), echoed
            assert echoed not in seen
            seen.add(echoed)


@FUZZ
@given(value=header_bytes)
def test_any_authorization_header_other_than_a_key_is_a_401(http, value):
    resp = http.post(CHAT, json={"model": "echo", "messages": [{"role": "user", "content": "hi"}]},
                     headers={"authorization": value})
    token = value.partition(b" ")[2].strip()
    if value.partition(b" ")[0].lower() == b"bearer" and token in (APP_KEY.encode(), ECHO_KEY.encode()):
        assert resp.status_code == 200
    else:
        assert resp.status_code == 401, resp.text
        assert check_error(resp)["type"] == "authentication_error"
