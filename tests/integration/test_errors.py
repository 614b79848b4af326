"""Every row of the SPEC §4 error table, in the OpenAI envelope, with x-request-id.

Raw checks go through httpx; one test shows what the openai SDK makes of them.
Upstream failures are steered per request by the fake's ``"fake": {...}`` body field.
"""

from __future__ import annotations

import re
import time
from typing import Any, Iterator

import httpx
import openai
import pytest

from tests.conftest import APP_KEY, ECHO_KEY, FAKE_KEY, Gateway, eventually
from tests.fakes.runner import FakeUpstream

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]
WRONG_PROVIDER_KEY = "sk-wrong-provider-key-0123456789"
SECRETS = (APP_KEY, ECHO_KEY, FAKE_KEY, WRONG_PROVIDER_KEY)


@pytest.fixture(scope="module")
def http(gw_std: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw_std.url, timeout=10) as client:
        yield client


def chat(http: httpx.Client, body: Any = None, *, content: Any = None, key: str | None = APP_KEY,
         headers: dict[str, str] | None = None) -> httpx.Response:
    sent = dict(headers or {})
    if key is not None:
        sent.setdefault("authorization", f"Bearer {key}")
    if content is not None:
        return http.post(CHAT, content=content, headers=sent)
    return http.post(CHAT, json=body, headers=sent)


def envelope(resp: httpx.Response, status: int) -> dict[str, Any]:
    """The error object of an OpenAI-envelope error response, checked."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers.get("x-request-id"), "every /v1 response carries x-request-id"
    body = resp.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert {"message", "type", "param", "code"} <= set(error), error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert error["param"] is None or isinstance(error["param"], str)
    assert error["code"] is None or isinstance(error["code"], str)
    return error


def upstream_attempts(fake: FakeUpstream) -> int:
    return sum(1 for r in fake.requests() if r["path"] == "/v1/chat/completions")


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# ---------------------------------------------------------------- 400


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"{\"model\": \"echo\",", b"[1, 2]", b'"a string"', b"42", b"null", b"true", b""],
    ids=["garbage", "cut-object", "array", "string", "number", "null", "boolean", "empty"],
)
def test_a_body_that_is_not_a_json_object_is_a_400(http, raw):
    error = envelope(chat(http, content=raw), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] is None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": HI}, "model"),
        ({"model": 7, "messages": HI}, "model"),
        ({"model": 7.5, "messages": HI}, "model"),
        ({"model": ["echo"], "messages": HI}, "model"),
        ({"model": None, "messages": HI}, "model"),
        ({"model": True, "messages": HI}, "model"),
        ({"model": {"name": "echo"}, "messages": HI}, "model"),
        ({"model": "echo"}, "messages"),
        ({"model": "echo", "messages": "hi"}, "messages"),
        ({"model": "echo", "messages": {"role": "user", "content": "hi"}}, "messages"),
        ({"model": "echo", "messages": None}, "messages"),
        ({"model": "echo", "messages": []}, "messages"),
        ({"model": "echo", "messages": ["hi"]}, "messages"),
        ({"model": "echo", "messages": [None]}, "messages"),
        ({"model": "echo", "messages": [{"content": "hi"}]}, "messages"),
        ({"model": "echo", "messages": [{"role": 1, "content": "hi"}]}, "messages"),
        ({"model": "echo", "messages": [*HI, {"role": None, "content": "x"}]}, "messages"),
        ({"model": "echo", "messages": HI, "stream": "true"}, "stream"),
        ({"model": "echo", "messages": HI, "stream": 1}, "stream"),
        ({"model": "echo", "messages": HI, "stream": {}}, "stream"),
    ],
    ids=[
        "model-missing", "model-int", "model-float", "model-list", "model-null", "model-bool",
        "model-object", "messages-missing", "messages-string", "messages-object", "messages-null",
        "messages-empty", "message-string", "message-null", "message-no-role", "message-role-int",
        "second-message-role-null", "stream-string", "stream-int", "stream-object",
    ],
)
def test_a_field_of_the_wrong_shape_is_a_400_naming_the_field(http, body, param):
    error = envelope(chat(http, body), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] is not None and error["param"].startswith(param), error


def test_a_gateway_error_echoes_the_clients_request_id(http):
    resp = chat(http, {"model": "echo"}, headers={"x-request-id": "trace-errors-400"})
    envelope(resp, 400)
    assert resp.headers["x-request-id"] == "trace-errors-400"
    resp = chat(http, {"model": "echo", "messages": HI}, key=None, headers={"x-request-id": "trace-errors-401"})
    envelope(resp, 401)
    assert resp.headers["x-request-id"] == "trace-errors-401"


# ---------------------------------------------------------------- 401 / 403 / 404


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer gw-test-key-nope-0123456789"},
        {"x-api-key": "gw-test-key-nope-0123456789"},
        {"authorization": "Bearer"},
        {"authorization": f"Basic {APP_KEY}"},
        {"authorization": "Basic Z3ctdGVzdC1rZXktYXBwLTAxMjM0NTY3ODk6"},
        {"authorization": APP_KEY},
    ],
    ids=["no-key", "wrong-bearer", "wrong-x-api-key", "empty-bearer", "basic-with-the-key", "basic-base64", "no-scheme"],
)
def test_a_missing_or_wrong_key_is_a_401(http, headers):
    error = envelope(chat(http, {"model": "echo", "messages": HI}, key=None, headers=headers), 401)
    assert error["type"] == "authentication_error"
    assert_no_secret(error["message"])


@pytest.mark.parametrize(
    "headers",
    [{"authorization": f"Bearer {APP_KEY}"}, {"authorization": f"bearer {APP_KEY}"}, {"x-api-key": APP_KEY}],
    ids=["bearer", "bearer-lowercase", "x-api-key"],
)
def test_the_key_is_accepted_as_bearer_and_as_x_api_key(http, headers):
    resp = chat(http, {"model": "echo", "messages": HI}, key=None, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] == "hi"
    assert resp.headers["x-request-id"]


def test_a_key_asking_for_a_model_it_may_not_use_is_a_403(http):
    error = envelope(chat(http, {"model": "gpt", "messages": HI}, key=ECHO_KEY), 403)
    assert error["type"] == "permission_error"
    assert_no_secret(error["message"])
    assert chat(http, {"model": "echo", "messages": HI}, key=ECHO_KEY).status_code == 200


def test_an_unknown_model_is_a_404_that_names_it(http):
    error = envelope(chat(http, {"model": "no-such-model-42", "messages": HI}), 404)
    assert "no-such-model-42" in error["message"]
    assert error["type"] == "not_found_error"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/does-not-exist"), ("POST", "/v1/chat/completion"), ("GET", "/v1/chat/completions")],
)
def test_an_unknown_v1_path_is_a_json_error_with_a_request_id(http, method, path):
    resp = http.request(method, path, headers={"authorization": f"Bearer {APP_KEY}"})
    assert resp.status_code in (404, 405), resp.text
    envelope(resp, resp.status_code)


def test_an_unknown_path_outside_v1_is_a_json_404(http):
    resp = http.get("/no/such/path")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()["error"]
    assert isinstance(error["message"], str) and isinstance(error["type"], str)
    assert {"message", "type", "param", "code"} <= set(error)


# ---------------------------------------------------------------- 413


def padded(size: int) -> bytes:
    """A valid echo request of exactly ``size`` bytes (JSON allows trailing spaces)."""
    raw = b'{"model": "echo", "messages": [{"role": "user", "content": "padded"}]}'
    return raw + b" " * (size - len(raw))


def test_a_body_of_exactly_max_body_bytes_is_accepted(http):
    resp = chat(http, content=padded(65536))
    assert resp.status_code == 200, resp.text


def test_a_body_over_max_body_bytes_with_content_length_is_a_413(http):
    resp = chat(http, content=padded(65537))
    assert resp.request.headers["content-length"] == "65537"
    error = envelope(resp, 413)
    assert error["type"] == "invalid_request_error"


def test_a_chunked_body_over_max_body_bytes_is_a_413(http):
    def pieces() -> Iterator[bytes]:
        data = padded(80_000)
        for i in range(0, len(data), 8000):
            yield data[i : i + 8000]

    resp = chat(http, content=pieces())
    assert "content-length" not in resp.request.headers
    assert resp.request.headers["transfer-encoding"] == "chunked"
    envelope(resp, 413)


def test_a_chunked_body_under_max_body_bytes_is_accepted(http):
    def pieces() -> Iterator[bytes]:
        data = padded(60_000)
        for i in range(0, len(data), 7000):
            yield data[i : i + 7000]

    resp = chat(http, content=pieces())
    assert resp.status_code == 200, resp.text


# ---------------------------------------------------------------- upstream errors


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_an_upstream_client_error_keeps_its_status_and_message_and_is_not_retried(http, fake, status):
    fake.reset()
    message = f"upstream refuses this request ({status})"
    body = {"model": "gpt", "messages": HI, "fake": {"status": status, "message": message}}
    error = envelope(chat(http, body), status)
    assert message in error["message"]
    assert upstream_attempts(fake) == 1


def test_upstream_401_for_the_gateways_own_credentials_is_a_502_without_the_upstream_text(http, fake):
    fake.reset()
    resp = chat(http, {"model": "wrong-creds", "messages": HI})
    error = envelope(resp, 502)
    sent = fake.requests()[-1]
    assert sent["headers"]["authorization"] == f"Bearer {WRONG_PROVIDER_KEY}"  # the 401 really came from upstream
    assert "Incorrect API key" not in error["message"]
    assert "api-keys" not in error["message"]
    assert_no_secret(resp.text)
    assert_no_secret(str(resp.headers))


def test_upstream_403_is_a_502_without_the_upstream_text(http, fake):
    message = f"key {FAKE_KEY} may not use gpt-upstream"
    resp = chat(http, {"model": "gpt", "messages": HI, "fake": {"status": 403, "message": message}})
    error = envelope(resp, 502)
    assert "may not use gpt-upstream" not in error["message"]
    assert_no_secret(resp.text)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_an_upstream_5xx_is_retried_then_a_502(http, fake, status):
    fake.reset()
    error = envelope(chat(http, {"model": "gpt", "messages": HI, "fake": {"status": status}}), 502)
    assert error["type"]
    assert upstream_attempts(fake) == 2  # routing.retries: 1


def test_an_upstream_429_is_a_429_with_its_retry_after_and_that_target_is_not_asked_again_meanwhile(http, fake):
    """The fake's 429 says `retry-after: 1`: the model's only target is not retried
    within that second, and the client is told when to come back."""
    fake.reset()
    resp = chat(http, {"model": "gpt", "messages": HI, "fake": {"status": 429}})
    error = envelope(resp, 429)
    assert error["type"] == "rate_limit_error"
    assert resp.headers["retry-after"] == "1"
    assert upstream_attempts(fake) == 1
    time.sleep(1.1)  # the target takes requests again after its Retry-After


def test_a_refused_connection_is_a_502(http):
    error = envelope(chat(http, {"model": "dead-only", "messages": HI}), 502)
    assert "dead" in error["message"]


@pytest.mark.parametrize("fault", ["reset_before_headers", "close_before_headers"])
def test_a_connection_dropped_before_the_headers_is_retried_then_a_502(http, fake, fault):
    fake.reset()
    envelope(chat(http, {"model": "gpt", "messages": HI, "fake": {"fault": fault}}), 502)
    assert upstream_attempts(fake) == 2


def test_a_hanging_upstream_is_a_504_after_the_first_byte_timeouts(http, fake):
    fake.reset()
    before = fake.stats()["client_disconnects"]
    started = time.monotonic()
    error = envelope(chat(http, {"model": "gpt", "messages": HI, "fake": {"fault": "hang"}}), 504)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 5.0, elapsed  # 2 attempts x first_byte_timeout_s 1, plus slack
    assert error["type"]
    assert upstream_attempts(fake) == 2
    # gw gave up on both hung requests: the fake saw both connections go.
    fake.wait_for(lambda s: s["client_disconnects"] >= before + 2, timeout=2)


@pytest.mark.parametrize("fault", ["garbage_mid_stream", "error_event", "truncate", "reset_mid_stream"])
def test_a_non_streaming_200_whose_body_is_not_a_completion_is_a_502(http, fault):
    error = envelope(chat(http, {"model": "gpt", "messages": HI, "fake": {"fault": fault}}), 502)
    assert error["type"]


def test_a_non_streaming_body_that_stalls_after_the_headers_times_out_on_timeout_s(fake, gateway):
    """first_byte_timeout_s bounds the wait for the headers; timeout_s the whole request."""
    gw = gateway(f"""
providers:
  slow:
    type: openai
    base_url: {fake.openai_base_url}
    api_key: {FAKE_KEY}
    first_byte_timeout_s: 0.3
    timeout_s: 2
models:
  m:
    targets: [{{provider: slow, model: gpt-upstream}}]
routing:
  retries: 0
""")
    started = time.monotonic()
    resp = httpx.post(gw.url + CHAT, timeout=10,
                      json={"model": "m", "messages": HI, "fake": {"fault": "stall_mid_stream"}})
    elapsed = time.monotonic() - started
    error = envelope(resp, 504)
    assert 1.5 <= elapsed < 4.0, (elapsed, error["message"])


# ---------------------------------------------------------------- the SDK's view


def test_the_openai_sdk_maps_gateway_errors_to_its_exception_classes(gw_std):
    url = gw_std.url + "/v1"
    with openai.OpenAI(base_url=url, api_key=APP_KEY, max_retries=0) as client, \
         openai.OpenAI(base_url=url, api_key="gw-test-key-nope-0123456789", max_retries=0) as stranger, \
         openai.OpenAI(base_url=url, api_key=ECHO_KEY, max_retries=0) as echo_only:  # fmt: skip

        def create(c: openai.OpenAI, model: str, fake: dict | None = None) -> object:
            return c.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}],
                extra_body={"fake": fake} if fake else None,
            )

        cases: list[tuple[type[openai.APIStatusError], int, Any]] = [
            (openai.BadRequestError, 400, lambda: create(client, "gpt", {"status": 400, "message": "bad things"})),
            (openai.AuthenticationError, 401, lambda: create(stranger, "echo")),
            (openai.PermissionDeniedError, 403, lambda: create(echo_only, "gpt")),
            (openai.NotFoundError, 404, lambda: create(client, "no-such-model")),
            (openai.UnprocessableEntityError, 422, lambda: create(client, "gpt", {"status": 422})),
            (openai.InternalServerError, 502, lambda: create(client, "dead-only")),
            (openai.InternalServerError, 504, lambda: create(client, "gpt", {"fault": "hang"})),
            (openai.RateLimitError, 429, lambda: create(client, "gpt", {"status": 429})),
            # Within that 429's Retry-After (1 s) the model's only target is out: fail fast.
            (openai.InternalServerError, 503, lambda: create(client, "gpt")),
        ]
        for exc_class, status, call in cases:
            with pytest.raises(exc_class) as info:
                call()
            exc = info.value
            assert exc.status_code == status
            assert exc.request_id, "x-request-id reaches the SDK's exception"
            assert isinstance(exc.body, dict) and exc.body["message"] in exc.message
            assert exc.type == exc.body["type"]
        time.sleep(1.1)
        bad = pytest.raises(openai.BadRequestError, create, client, "gpt", {"status": 400, "message": "bad things"})
        assert "bad things" in bad.value.message


# ---------------------------------------------------------------- still serving


def test_after_all_that_a_normal_request_still_succeeds(http, gw_std):
    assert gw_std.process.poll() is None, "gw is still running"
    resp = chat(http, {"model": "gpt", "messages": [{"role": "user", "content": "still here"}]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] == "fake: still here"
    assert chat(http, {"model": "echo", "messages": HI}).status_code == 200


def test_failed_attempts_and_retries_are_counted_by_provider_and_reason(gw_std):
    def value(text: str, name: str, **labels: str) -> float:
        for line in text.splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = httpx.get(gw_std.url + "/metrics").text
    resp = httpx.post(
        gw_std.url + CHAT,
        headers={"authorization": f"Bearer {APP_KEY}"},
        json={"model": "gpt", "messages": HI, "fake": {"status": 503}},
    )
    assert resp.status_code == 502
    key = {"provider": "up", "reason": "status_503"}

    def counted() -> str | None:  # the other workers publish their metrics every 0.25 s
        text = httpx.get(gw_std.url + "/metrics").text
        errors = value(text, "gw_upstream_errors_total", **key) - value(before, "gw_upstream_errors_total", **key)
        return text if errors >= 2 else None

    after = eventually(counted, 3, "both failed attempts counted")
    assert value(after, "gw_upstream_errors_total", **key) - value(before, "gw_upstream_errors_total", **key) == 2
    assert value(after, "gw_retries_total", model="gpt") - value(before, "gw_retries_total", model="gpt") == 1
