"""Locust scenarios against gw (run headless by ``python -m loadtests.run_locust``).

User classes (pick them by name on the locust command line; all three = "mixed"):

- ``ChatUser``    non-streaming POST /v1/chat/completions, model ``fake-gpt``
- ``StreamUser``  streaming, ``stream_options.include_usage``, 20 chunks from the fake
- ``EchoUser``    model ``echo`` (gw's built-in provider), streaming and not

Every response body is validated (``catch_response=True``): a request counts as
failed unless it is a 200 with a well-formed body; a stream must end with
``data: [DONE]``, carry no ``error`` event, exactly one ``finish_reason``, the
expected content and (with include_usage) exactly one usage chunk just before
``[DONE]``.

Environment: ``GW_LOAD_KEY`` (client key sent as ``Authorization: Bearer``),
``GW_LOAD_MODEL`` (default ``fake-gpt``), ``GW_LOAD_ECHO_MODEL`` (default ``echo``).
"""

from __future__ import annotations

import os

try:
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover
    import json

    _loads = json.loads

import csv

from locust import FastHttpUser, constant, events, task
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

PATH = "/v1/chat/completions"
KEY = os.environ.get("GW_LOAD_KEY", "")
MODEL = os.environ.get("GW_LOAD_MODEL", "fake-gpt")
ECHO_MODEL = os.environ.get("GW_LOAD_ECHO_MODEL", "echo")
CHUNKS = 20
HEADERS = {"authorization": f"Bearer {KEY}"} if KEY else {}

CHAT_BODY = {
    "model": MODEL,
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Say hello in one short sentence."},
    ],
    "max_tokens": 32,
}
STREAM_BODY = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Count to twenty."}],
    "stream": True,
    "stream_options": {"include_usage": True},
    "fake": {"chunks": CHUNKS},
}
# the fake's content for {"chunks": N}: "w0 w1 ... wN-1"
STREAM_CONTENT = " ".join(f"w{i}" for i in range(CHUNKS))
ECHO_TEXT = "echo these few words back please"
ECHO_BODY = {"model": ECHO_MODEL, "messages": [{"role": "user", "content": ECHO_TEXT}]}
ECHO_STREAM_BODY = {**ECHO_BODY, "stream": True, "stream_options": {"include_usage": True}}


# --------------------------------------------------------------------------- final CSV
# Locust (2.47) rewrites PREFIX_stats.csv from a greenlet once a second and does
# not write it again at shutdown, so that file misses the last ~1-3 s of the run
# (seen: 7,935 requests in the CSV, 9,380 in the printed summary and at the
# upstream).  Write the final numbers once the users have stopped.
_ENV = None


@events.init.add_listener
def _keep_env(environment, **_kw) -> None:
    global _ENV
    _ENV = environment


@events.quit.add_listener
def _write_final_csv(**_kw) -> None:
    prefix = getattr(getattr(_ENV, "parsed_options", None), "csv_prefix", None)
    if not prefix:
        return
    out = StatsCSV(_ENV, PERCENTILES_TO_REPORT)
    with open(f"{prefix}_final_stats.csv", "w", newline="") as f:
        out.requests_csv(csv.writer(f))
    with open(f"{prefix}_final_failures.csv", "w", newline="") as f:
        out.failures_csv(csv.writer(f))


# --------------------------------------------------------------------------- checks
def check_completion(status: int, body: bytes, content: str | None = None) -> str | None:
    """None if ``body`` is a good chat.completion, else why not."""
    if status != 200:
        return f"status {status}: {body[:200]!r}"
    try:
        doc = _loads(body)
    except ValueError:
        return f"not JSON: {body[:200]!r}"
    if not isinstance(doc, dict) or "error" in doc:
        return f"error body: {body[:200]!r}"
    choices = doc.get("choices")
    if not isinstance(choices, list) or len(choices) != 1:
        return f"bad choices: {body[:200]!r}"
    msg = choices[0].get("message") or {}
    if not isinstance(msg.get("content"), str) or choices[0].get("finish_reason") is None:
        return f"bad choice: {body[:200]!r}"
    if content is not None and content not in msg["content"]:
        return f"unexpected content {msg['content']!r}"
    if not isinstance(doc.get("usage"), dict):
        return "no usage"
    return None


def check_stream(status: int, body: bytes, content: str | None = None, usage: bool = True) -> str | None:
    """None if ``body`` is a complete, clean SSE chat stream, else why not."""
    if status != 200:
        return f"status {status}: {body[:200]!r}"
    if not body.endswith(b"data: [DONE]\n\n"):
        return f"does not end with [DONE]: ...{body[-120:]!r}"
    events = [e for e in body.replace(b"\r\n", b"\n").split(b"\n\n") if e.strip()]
    payloads = []
    for ev in events:
        data = b"\n".join(ln[5:].lstrip(b" ") for ln in ev.split(b"\n") if ln.startswith(b"data:"))
        if data:
            payloads.append(data)
    if not payloads or payloads[-1] != b"[DONE]" or b"[DONE]" in payloads[:-1]:
        return "[DONE] missing or not last"
    finishes = 0
    usage_at: list[int] = []
    text: list[str] = []
    for i, data in enumerate(payloads[:-1]):
        try:
            chunk = _loads(data)
        except ValueError:
            return f"event {i} not JSON: {data[:120]!r}"
        if not isinstance(chunk, dict) or "error" in chunk:
            return f"error event: {data[:200]!r}"
        for ch in chunk.get("choices") or ():
            if ch.get("finish_reason") is not None:
                finishes += 1
            piece = (ch.get("delta") or {}).get("content")
            if piece:
                text.append(piece)
        if chunk.get("usage"):
            usage_at.append(i)
    if finishes != 1:
        return f"{finishes} finish_reason chunks"
    if usage and usage_at != [len(payloads) - 2]:
        return f"usage chunks at {usage_at} of {len(payloads) - 1} events"
    if content is not None and "".join(text).strip() != content:
        return f"unexpected content {''.join(text)[:120]!r}"
    return None


def _post(user: FastHttpUser, name: str, body: dict, checker, content: str | None) -> None:
    with user.client.post(PATH, json=body, headers=HEADERS, name=name, catch_response=True) as r:
        why = checker(r.status_code, r.content or b"", content)
        if why is None:
            r.success()
        else:
            r.failure(why)


# --------------------------------------------------------------------------- users
class _Base(FastHttpUser):
    abstract = True
    wait_time = constant(0)
    network_timeout = 10.0
    connection_timeout = 5.0


class ChatUser(_Base):
    """Non-streaming chat completions through gw to the fake upstream."""

    weight = 3

    @task
    def chat(self) -> None:
        _post(self, "chat", CHAT_BODY, check_completion, None)


class StreamUser(_Base):
    """20-chunk streams with include_usage through gw to the fake upstream."""

    weight = 2

    @task
    def stream(self) -> None:
        _post(self, "stream", STREAM_BODY, check_stream, STREAM_CONTENT)


class EchoUser(_Base):
    """gw's built-in echo provider (no upstream), streaming and not."""

    weight = 1

    @task
    def echo(self) -> None:
        _post(self, "echo", ECHO_BODY, check_completion, ECHO_TEXT)

    @task
    def echo_stream(self) -> None:
        _post(self, "echo stream", ECHO_STREAM_BODY, check_stream, ECHO_TEXT)
