"""No API key, the client's or a provider's, ever leaves gw: not in an answer,
a log line or a metric (SPEC §4 Errors, §6); and the log has one JSON line per
request with the SPEC §6 fields.

One gateway of its own, driven through every path that handles a key, then
stopped, so that everything it printed has been flushed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests.conftest import APP_KEY, ECHO_KEY, FAKE_KEY, eventually, standard_config

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"
WRONG_PROVIDER_KEY = "sk-wrong-provider-key-0123456789"
CLIENT_SECRET = "sk-client-secret-ABCDEF0123456789"
SECRETS = {
    "the app key": APP_KEY,
    "the echo-only key": ECHO_KEY,
    "the provider key": FAKE_KEY,
    "the wrong provider key": WRONG_PROVIDER_KEY,
    "the made-up client key": CLIENT_SECRET,
}
PROMPT_TEXT = "purple-elephant-prompt-words"  # never logged (logging.bodies is off)
CONFIG_MODELS = {"gpt", "azure-gpt", "wrong-creds", "dead-only", "dead-then-up", "echo"}
CONFIG_PROVIDERS = {"up", "az", "badkey", "dead", "demo"}
CONFIG_KEYS = {"app", "echo-only"}


def messages(text: str = PROMPT_TEXT) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def find_secrets(where: str, text: str) -> list[str]:
    return [f"{name} in {where}" for name, secret in SECRETS.items() if secret in text]


def dump(resp: httpx.Response) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in resp.headers.multi_items())
    return f"{resp.status_code}\n{headers}\n\n{resp.text}"


def tokens_of(line: dict[str, Any]) -> tuple[Any, Any]:
    """(prompt, completion) tokens of a log line, as `tokens: {...}` or two fields."""
    if isinstance(line.get("tokens"), dict):
        return line["tokens"].get("prompt"), line["tokens"].get("completion")
    assert "prompt_tokens" in line and "completion_tokens" in line, line
    return line["prompt_tokens"], line["completion_tokens"]


def test_no_key_ever_appears_in_an_answer_a_log_line_or_a_metric(fake, gateway):
    gw = gateway(standard_config(fake))
    answers: list[tuple[str, httpx.Response]] = []  # (what, response)

    with httpx.Client(base_url=gw.url, timeout=10) as http:

        def call(what: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
            resp = http.post(CHAT, json=body, headers={**headers, "x-request-id": f"secrets-{len(answers)}"})
            answers.append((what, resp))
            return resp

        app = {"authorization": f"Bearer {APP_KEY}"}
        bad = call("wrong bearer key", {"model": "echo", "messages": messages()},
                   {"authorization": f"Bearer {CLIENT_SECRET}"})
        assert bad.status_code == 401
        assert call("wrong x-api-key", {"model": "gpt", "messages": messages()},
                    {"x-api-key": CLIENT_SECRET}).status_code == 401
        assert call("wrong basic", {"model": "gpt", "messages": messages()},
                    {"authorization": f"Basic {CLIENT_SECRET}"}).status_code == 401
        ok = call("echo", {"model": "echo", "messages": messages()}, app)
        assert ok.status_code == 200
        assert ok.json()["choices"][0]["message"]["content"] == PROMPT_TEXT
        assert call("gpt", {"model": "gpt", "messages": messages()}, {"x-api-key": APP_KEY}).status_code == 200
        assert call("echo-only on gpt", {"model": "gpt", "messages": messages()},
                    {"authorization": f"Bearer {ECHO_KEY}"}).status_code == 403
        assert call("echo-only stream", {"model": "echo", "messages": messages(), "stream": True,
                                         "stream_options": {"include_usage": True}},
                    {"authorization": f"Bearer {ECHO_KEY}"}).status_code == 200
        fake.reset()
        creds = call("wrong-creds", {"model": "wrong-creds", "messages": messages()}, app)
        assert creds.status_code == 502
        assert fake.requests()[-1]["headers"]["authorization"] == f"Bearer {WRONG_PROVIDER_KEY}"
        quoted = call("upstream quotes the key", {
            "model": "gpt", "messages": messages(),
            "fake": {"status": 400, "message": f"bad key {FAKE_KEY} in request"},
        }, app)
        assert quoted.status_code == 400
        assert "bad key" in quoted.json()["error"]["message"]  # the rest of the upstream message is kept
        assert call("upstream 403 quotes the key", {
            "model": "gpt", "messages": messages(),
            "fake": {"status": 403, "message": f"key {FAKE_KEY} is not allowed"},
        }, app).status_code == 502
        broken = call("stream failing mid-way", {
            "model": "gpt", "messages": messages(), "stream": True, "fake": {"fault": "error_event", "after": 2},
        }, app)
        assert broken.status_code == 200 and '"error"' in broken.text
        cut = call("stream reset mid-way", {
            "model": "gpt", "messages": messages(), "stream": True, "fake": {"fault": "reset_mid_stream"},
        }, app)
        assert cut.status_code == 200 and '"error"' in cut.text
        metrics = http.get("/metrics")
        assert metrics.status_code == 200

    # request lines are flushed every 0.2 s
    eventually(lambda: gw.output().count('"event":"request"') >= len(answers), 3, "every request logged")
    gw.close()
    output = gw.stdout_path.read_text(errors="replace") + gw.stderr_path.read_text(errors="replace")

    leaks = [leak for what, resp in answers for leak in find_secrets(f"the answer to {what}", dump(resp))]
    leaks += find_secrets("GET /metrics", metrics.text)
    leaks += find_secrets("gw's output", output)
    assert leaks == []
    assert PROMPT_TEXT not in output, "prompt text is logged only with logging.bodies: true"

    # ---- one JSON line per request, with the SPEC §6 fields
    lines = [line for line in output.splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a log line is not JSON: {line!r}")
    by_id: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if "request_id" in record:
            by_id.setdefault(record["request_id"], []).append(record)
    for what, resp in answers:
        rid = resp.headers["x-request-id"]
        assert len(by_id.get(rid, [])) == 1, f"{what}: {len(by_id.get(rid, []))} log lines for {rid}"
        line = by_id[rid][0]
        for field in ("request_id", "key", "model", "provider", "status", "duration_ms", "retries", "cache_hit"):
            assert field in line, (what, field, line)
        assert isinstance(line["duration_ms"], (int, float)) and line["duration_ms"] >= 0
        assert isinstance(line["retries"], int) and isinstance(line["cache_hit"], bool)
        assert line["key"] is None or line["key"] in CONFIG_KEYS, line  # the key's NAME
        if resp.status_code != 200:
            assert line["status"] == resp.status_code, (what, line)
        if resp.headers.get("content-type", "").startswith("text/event-stream"):
            assert isinstance(line["ttft_ms"], (int, float)) and line["ttft_ms"] >= 0, (what, line)
        tokens_of(line)
    by_what = {what: by_id[resp.headers["x-request-id"]][0] for what, resp in answers}
    assert by_what["wrong bearer key"]["key"] is None
    assert by_what["echo"]["key"] == "app"
    assert by_what["echo"]["model"] == "echo" and by_what["echo"]["provider"] == "demo"
    assert by_what["echo"]["status"] == 200
    usage = ok.json()["usage"]
    assert tokens_of(by_what["echo"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert by_what["echo-only stream"]["key"] == "echo-only"
    assert by_what["echo-only on gpt"]["key"] == "echo-only"
    assert by_what["gpt"]["provider"] == "up"
    assert by_what["stream failing mid-way"]["status"] != 200, "a stream that failed is not logged as a success"


def test_metric_label_values_are_only_config_names(fake, gateway):
    """SPEC §6: label values limited to config names, whatever a client sends."""
    gw = gateway(standard_config(fake))
    with httpx.Client(base_url=gw.url, timeout=10, headers={"authorization": f"Bearer {APP_KEY}"}) as http:
        assert http.post(CHAT, json={"model": "echo", "messages": messages()}).status_code == 200
        assert http.post(CHAT, json={"model": "no-such-model-7f3a", "messages": messages()}).status_code == 404
        assert http.post(CHAT, json={"model": CLIENT_SECRET, "messages": messages()}).status_code == 404
        assert http.post(CHAT, json={"model": "echo", "messages": messages()},
                         headers={"authorization": f"Bearer {CLIENT_SECRET}"}).status_code == 401
        text = http.get("/metrics").text
    allowed = {"key": CONFIG_KEYS | {""}, "model": CONFIG_MODELS | {""}, "provider": CONFIG_PROVIDERS | {""}}
    odd = []
    for name, value in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', text):
        if name in allowed and value not in allowed[name]:
            odd.append(f'{name}="{value}"')
    assert odd == []
    assert find_secrets("GET /metrics", text) == []
