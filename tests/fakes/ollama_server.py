"""A wire-level fake of Ollama's native API (``/api/chat``, ``/api/embed``, ``/api/tags``).

Run it as a process::

    python -m tests.fakes.ollama_server --host 127.0.0.1 --port 0 [--api-key KEY]

It prints ``LISTENING <port>`` once it accepts connections. In tests::

    with OllamaFake() as fake:
        client = ollama.Client(host=fake.url)
        # or a gw provider {type: ollama, base_url: fake.url}

Routes, as Ollama answers them: ``POST /api/chat`` (``stream`` defaults to
true: ``application/x-ndjson``, one JSON object per line, the last with
``"done": true``, ``done_reason``, the durations, ``prompt_eval_count`` and
``eval_count``; with ``"stream": false`` one JSON object; an empty
``messages`` loads the model: ``done_reason: "load"``), ``POST /api/embed``,
``GET /api/tags``, ``GET /api/version``, ``GET /`` ("Ollama is running").
Errors are ``{"error": "..."}``: a model not in ``/api/tags`` (nor a
``bench-*`` name, for the load tests) is a 404 ``model "x" not found, try
pulling it first``, a body that is not JSON a 400. With
``--api-key`` (Ollama behind a proxy, ollama.com) a request without
``Authorization: Bearer KEY`` is a 401 ``{"error": "unauthorized"}``.

Answers: ``fake: <the last user message's text>`` (after tool results:
``fake: <tool_name>=<content> ...``), word by word when streamed, at most
``options.num_predict`` words (``done_reason: "length"``); the counts are
words: ``prompt_eval_count`` of every message, ``eval_count`` of the answer.

Steering: when the last user message's text starts with ``FAKE {json}``, the
fake follows that object. The text after it is the prompt; without any, the
answer is ``fake: ok``, or only the tool calls when ``tool_calls`` is given.

``status``, ``message``   answer that error status with Ollama's body ``{"error": message}``
                          (a 429 has ``retry-after``: ``retry_after``, default "1")
``content``, ``chunks``   explicit answer text / N words ``w0 w1 ...``
``tool_calls``            ``[{"name", "arguments"?: obj}]``: ``message.tool_calls``
                          (``arguments`` ``{}`` when not given), after any text, in one
                          line, or one line each with ``tool_events: "separate"``
``thinking``              ``message.thinking`` first (its own lines when streamed)
``done_reason``           overrides the final ``done_reason`` (e.g. "length", "load")
``counts``                false: no ``prompt_eval_count`` / ``eval_count`` on the final line
``fault``                 reset_before_headers | close_before_headers | hang |
                          reset_mid_stream | stall_mid_stream | garbage_mid_stream |
                          error_event (an ``{"error": ...}`` line after HTTP 200) |
                          truncate (a clean end before the done line); mid-stream ones
                          after ``after`` content lines (default 2)
``split``                 "bytes" (one byte per write) | "random" (1..7 bytes, ``seed``)
``delay_s``, ``chunk_delay_s``

Admin routes as in the OpenAI fake: ``GET /_fake/requests``, ``/_fake/stats``,
``POST /_fake/reset``, and the process-wide mode ``GET``/``POST /_fake/mode``
(a directive for every request without its own, ``times`` N or until
changed; also on ``GET /``, ``/api/version``, ``/api/tags`` and
``/api/embed``: see ``tests.fakes.openai_server``).
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson

from tests.fakes.openai_server import FakeProtocol
from tests.fakes.runner import FakeUpstream
from tests.fakes.server import (
    MID_STREAM_FAULTS,
    WORD_RE,
    Writer,
    directive,
    head_bytes,
    http_chunk,
    run,
)


class OllamaFake(FakeUpstream):
    """The Ollama fake as a process: ``with OllamaFake() as fake: fake.url`` (no ``/api``)."""

    module = "tests.fakes.ollama_server"

    @property
    def ollama_base_url(self) -> str:
        return self.url


EMBED_DIMENSIONS = 8
VERSION = "0.12.6"
MID_STREAM_ERROR = "an error was encountered while running the model: unexpected EOF"

DEFAULT_MESSAGES = {
    400: "invalid request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    429: "too many requests",
    500: "llama runner process has terminated: exit status 2",
    503: "server busy, please try again.  maximum pending requests exceeded",
}


def _model(name: str, family: str, size: str, quant: str, digest_seed: str) -> dict:
    return {
        "name": name,
        "model": name,
        "modified_at": "2025-10-01T12:00:00.000000000Z",
        "size": 2019393189,
        "digest": hashlib.sha256(digest_seed.encode()).hexdigest(),
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": size,
            "quantization_level": quant,
        },
    }


MODELS = [
    _model("llama3.2:latest", "llama", "3.2B", "Q4_K_M", "llama3.2"),
    _model("qwen3:8b", "qwen3", "8.2B", "Q4_K_M", "qwen3"),
    _model("llava:latest", "llama", "7B", "Q4_0", "llava"),
    _model("nomic-embed-text:latest", "nomic-bert", "137M", "F16", "nomic"),
    _model("all-minilm:latest", "bert", "23M", "F16", "minilm"),
]
KNOWN = {m["name"] for m in MODELS}
EMBED_ONLY = {"nomic-embed-text:latest", "all-minilm:latest"}
TAGS_BODY = orjson.dumps({"models": MODELS})


def full_name(model: str) -> str:
    """Ollama's names default to the ``latest`` tag: ``llama3.2`` is ``llama3.2:latest``."""
    return model if ":" in model.rsplit("/", 1)[-1] else model + ":latest"


def pulled(model: str) -> bool:
    """A model this fake has: those ``/api/tags`` lists, and any ``bench-*``
    name (the load tests' ``loadtests/bench.py`` models)."""
    return full_name(model) in KNOWN or model.startswith("bench-")


def error(message: str) -> bytes:
    return orjson.dumps({"error": message})


def not_found(model: str) -> bytes:
    return error(f'model "{model}" not found, try pulling it first')


def json_error(raw: bytes) -> bytes:
    """Go's encoding/json complaint about a body that is not JSON."""
    text = raw.decode("utf-8", "replace").lstrip()
    if not text:
        return error("unexpected EOF")
    return error(f"invalid character {text[0]!r} looking for beginning of value")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------- reading a request


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return ""


def last_turn(messages: list) -> tuple[str, bool]:
    """The prompt: the last user message's text, or, when the conversation ends
    with tool results, ``name=content`` of each; and whether it may steer."""
    results: list[str] = []
    for m in reversed(messages):
        if not isinstance(m, dict):
            continue
        if m.get("role") == "tool":
            results.append(f"{m.get('tool_name') or '?'}={text_of(m.get('content'))}")
            continue
        if results:
            break
        if m.get("role") == "user":
            return text_of(m.get("content")), True
    return " ".join(reversed(results)), False


def check_images(messages: list) -> str | None:
    """Go decodes ``images`` as base64 []byte: what it says about a bad one."""
    for m in messages:
        for image in (m.get("images") or ()) if isinstance(m, dict) else ():
            if not isinstance(image, str):
                return "json: cannot unmarshal into Go struct field Message.messages.images of type []uint8"
            try:
                binascii.a2b_base64(image, strict_mode=True)
            except (binascii.Error, ValueError):
                return "illegal base64 data at input byte 0"
    return None


class Answer:
    """What one /api/chat request answers, as Ollama response objects."""

    def __init__(self, body: dict, model: str, fake: dict, prompt: str) -> None:
        self.model = model
        self.fake = fake
        self.created_at = now()
        if fake.get("chunks") is not None:
            words = [f"w{i} " for i in range(int(fake["chunks"]))]
            if words:
                words[-1] = words[-1].rstrip()
        else:
            if isinstance(fake.get("content"), str):
                text = fake["content"]
            elif prompt or not fake.get("tool_calls"):
                text = "fake: " + (prompt or "ok")
            else:
                text = ""  # only the tool calls
            words = WORD_RE.findall(text)
            lead = text[: len(text) - len(text.lstrip())]
            if lead:
                words = [lead + words[0], *words[1:]] if words else [lead]
        self.done_reason = "stop"
        options = body.get("options") if isinstance(body.get("options"), dict) else {}
        limit = options.get("num_predict")
        if isinstance(limit, int) and 0 <= limit < len(words):
            words = words[:limit]
            if words:
                words[-1] = words[-1].rstrip()
            self.done_reason = "length"
        if isinstance(fake.get("done_reason"), str):
            self.done_reason = fake["done_reason"]
        self.words = words
        self.thinking = fake.get("thinking") if isinstance(fake.get("thinking"), str) else None
        self.calls = [
            {"function": {"name": c["name"], "arguments": c.get("arguments") or {}}}
            for c in fake.get("tool_calls") or ()
        ]
        self.prompt_tokens = sum(
            len(text_of(m.get("content")).split()) for m in body["messages"] if isinstance(m, dict)
        )

    def line(self, message: dict) -> dict:
        return {"model": self.model, "created_at": self.created_at, "message": message, "done": False}

    def final(self, message: dict) -> dict:
        out: dict[str, Any] = {
            "model": self.model,
            "created_at": self.created_at,
            "message": message,
            "done_reason": self.done_reason,
            "done": True,
            "total_duration": 412345678,
            "load_duration": 12345678,
        }
        if self.fake.get("counts", True):
            # Go's omitempty: a zero count is left out, as Ollama does
            if self.prompt_tokens:
                out["prompt_eval_count"] = self.prompt_tokens
            out["prompt_eval_duration"] = 23456789
            if self.words:
                out["eval_count"] = len(self.words)
            out["eval_duration"] = 345678901
        return out

    def whole(self) -> dict:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.words)}
        if self.thinking:
            message["thinking"] = self.thinking
        if self.calls:
            message["tool_calls"] = self.calls
        return self.final(message)

    def content_lines(self) -> list[dict]:
        """The stream's lines before the final one (content, then tool calls)."""
        lines = []
        if self.thinking:
            for word in WORD_RE.findall(self.thinking):
                lines.append(self.line({"role": "assistant", "content": "", "thinking": word}))
        for word in self.words:
            lines.append(self.line({"role": "assistant", "content": word}))
        if self.calls:
            groups = [[c] for c in self.calls] if self.fake.get("tool_events") == "separate" else [self.calls]
            for group in groups:
                lines.append(self.line({"role": "assistant", "content": "", "tool_calls": group}))
        return lines

    def final_line(self) -> dict:
        return self.final({"role": "assistant", "content": ""})


def embedding(text: str, dims: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [(digest[j % 32] - 128) / 128.0 for j in range(dims)]


def ndjson(obj: dict | bytes) -> bytes:
    return (obj if isinstance(obj, bytes) else orjson.dumps(obj)) + b"\n"


# ---------------------------------------------------------------- protocol


class OllamaProtocol(FakeProtocol):
    def stream_head(self, rid: str) -> bytes:
        headers = [
            ("content-type", "application/x-ndjson"),
            ("date", "Wed, 01 Oct 2025 12:00:00 GMT"),
            ("transfer-encoding", "chunked"),
        ]
        if not self.keep_alive:
            headers.append(("connection", "close"))
        return head_bytes(200, headers)

    def reply(self, status: int, body: bytes, content_type: str = "application/json; charset=utf-8",
              retry_after: str | None = None) -> None:
        extra = [("date", "Wed, 01 Oct 2025 12:00:00 GMT")]
        if status == 429:
            extra.append(("retry-after", retry_after or "1"))
        self.send(status, body, "", extra, content_type)

    def status_reply(self, status: int, fake: dict, rid: str) -> None:
        message = fake.get("message") or DEFAULT_MESSAGES.get(status, f"fake upstream error {status}")
        self.reply(status, error(message), retry_after=fake.get("retry_after"))

    def dispatch(self, method: str, target: str, headers: dict, raw: bytes) -> None:
        path, _, qs = target.partition("?")
        state = self.state
        if path.startswith("/_fake/"):
            if not self.admin(method, path, raw):
                self.reply(404, b"404 page not found", "text/plain")
            return

        query = dict(parse_qsl(qs, keep_blank_values=True)) if qs else {}
        body = self.record(method, path, query, headers, raw)
        state.next_ids()

        if state.bearer is not None and headers.get("authorization") != state.bearer:
            self.reply(401, error("unauthorized"))
            return
        route = (method, path)
        if route in (("GET", "/"), ("HEAD", "/")):
            self.answer(state.take_mode(), lambda: self.reply(200, b"Ollama is running", "text/plain; charset=utf-8"), "")
        elif route == ("GET", "/api/version"):
            self.answer(state.take_mode(), lambda: self.reply(200, orjson.dumps({"version": VERSION})), "")
        elif route == ("GET", "/api/tags"):
            self.answer(state.take_mode(), lambda: self.reply(200, TAGS_BODY), "")
        elif route in (("POST", "/api/chat"), ("POST", "/api/embed")):
            if not isinstance(body, dict):
                self.reply(400, json_error(raw) if body is None else error("json: cannot unmarshal into request"))
                return
            model = body.get("model")
            if not isinstance(model, str) or not model:
                self.reply(400, error("model is required"))
                return
            if not pulled(model):
                self.reply(404, not_found(model))
                return
            if path == "/api/chat":
                self.chat(body, model)
            else:
                self.embed(body, model)
        else:
            self.reply(404, b"404 page not found", "text/plain")

    # -- chat

    def chat(self, body: dict, model: str) -> None:
        if full_name(model) in EMBED_ONLY:
            self.reply(400, error(f'"{model}" does not support chat'))
            return
        messages = body.get("messages")
        if messages is None or messages == []:
            # An empty chat loads the model; one JSON object, streamed or not.
            loaded = orjson.dumps({
                "model": model, "created_at": now(), "message": {"role": "assistant", "content": ""},
                "done_reason": "load", "done": True,
            })
            self.answer(self.state.take_mode(), lambda: self.reply(200, loaded), "")
            return
        if not isinstance(messages, list):
            self.reply(400, error("json: cannot unmarshal into Go struct field ChatRequest.messages"))
            return
        bad = check_images(messages)
        if bad:
            self.reply(400, error(bad))
            return
        text, may_steer = last_turn(messages)
        try:
            fake, prompt = directive(text) if may_steer else (None, text)
        except ValueError as exc:
            self.reply(400, error(f"fake: {exc}"))
            return
        if fake is None:
            fake = self.state.take_mode()
        answer = Answer(body, model, fake or {}, prompt)
        streaming = body.get("stream") is not False  # Ollama streams unless told not to
        if fake:
            self.start(self.run_fake(fake, answer, streaming))
        elif streaming:
            self.stream_sync(answer)
        else:
            self.reply(200, orjson.dumps(answer.whole()))

    def stream_sync(self, answer: Answer) -> None:
        st = self.state.stats
        w = self.transport.write
        w(self.stream_head(""))
        st["streams_started"] += 1
        for line in answer.content_lines():
            w(http_chunk(ndjson(line)))
        w(http_chunk(ndjson(answer.final_line())) + b"0\r\n\r\n")
        st["streams_completed"] += 1

    async def run_fake(self, fake: dict, answer: Answer, streaming: bool) -> None:
        try:
            await self.delay(fake)
            status = fake.get("status")
            if isinstance(status, int) and status >= 400:
                self.status_reply(status, fake, "")
                return
            fault = fake.get("fault")
            if await self.fault_before_headers(fault):
                return
            if fault is not None and fault not in MID_STREAM_FAULTS:
                self.reply(400, error(f"unknown fake fault {fault!r}"))
                return
            if streaming:
                await self.stream_async(answer, fake, fault)
            else:
                await self.whole_async(orjson.dumps(answer.whole()), fake, fault)
        except asyncio.CancelledError:
            self.count_disconnect()

    async def whole_async(self, body: bytes, fake: dict, fault: str | None) -> None:
        if fault is None:
            self.reply(200, body)
            return
        if fault == "garbage_mid_stream":
            self.reply(200, b"{not json")
            return
        if fault == "error_event":
            self.reply(200, error(fake.get("message") or MID_STREAM_ERROR))
            return
        head = head_bytes(200, [("content-type", "application/json; charset=utf-8"), ("content-length", str(len(body)))])
        await self.cut_body(head, body, fault)

    async def stream_async(self, answer: Answer, fake: dict, fault: str | None) -> None:
        out = Writer(self.transport, fake)
        after = int(fake.get("after", 2)) if fault else -1
        st = self.state.stats
        self.transport.write(self.stream_head(""))
        st["streams_started"] += 1
        lines = answer.content_lines()
        for i, line in enumerate(lines):
            if i == after:
                break
            if i:
                await out.pause()
            await out.send(ndjson(line))
        else:
            fault = None  # the stream was shorter than ``after``: it ends normally
        if await self.break_stream(out, fault):
            return
        if fault == "error_event":
            await out.send(ndjson(error(fake.get("message") or MID_STREAM_ERROR)))
        elif fault == "garbage_mid_stream":
            await out.send(b"{not json\n")
            for line in lines[max(after, 0):]:
                await out.send(ndjson(line))
            await out.send(ndjson(answer.final_line()))
        elif fault is None:
            await out.send(ndjson(answer.final_line()))
        # truncate: a clean end without the done line
        await out.end()
        st["streams_completed"] += 1

    # -- embeddings

    def embed(self, body: dict, model: str) -> None:
        inp = body.get("input")
        if isinstance(inp, str):
            texts = [inp]
        elif isinstance(inp, list) and all(isinstance(t, str) for t in inp):
            texts = inp
        else:
            self.reply(400, error("invalid input type"))
            return
        steered = False
        for text in texts:
            fake, _ = directive(text) if text.startswith("FAKE ") else (None, text)
            steered = steered or fake is not None
            if fake and isinstance(fake.get("status"), int):
                self.status_reply(fake["status"], fake, "")
                return
        dims = body.get("dimensions") if isinstance(body.get("dimensions"), int) else EMBED_DIMENSIONS
        out = orjson.dumps({
            "model": model,
            "embeddings": [embedding(text, dims) for text in texts],
            "total_duration": 14143917,
            "load_duration": 1019500,
            "prompt_eval_count": sum(len(t.split()) for t in texts),
        })
        self.answer(None if steered else self.state.take_mode(), lambda: self.reply(200, out), "")


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    run(OllamaProtocol, "fake Ollama upstream", argv)


if __name__ == "__main__":
    main()
