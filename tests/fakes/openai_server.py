"""A wire-level fake of the OpenAI and Azure OpenAI chat APIs.

Run it as a process::

    python -m tests.fakes.openai_server --host 127.0.0.1 --port 0 [--api-key KEY]

It prints one line ``LISTENING <port>`` once it accepts connections.

It is a raw asyncio ``Protocol`` HTTP/1.1 server (uvloop when importable), fast
enough to be the upstream of load tests. Tests steer it with an optional body
field ``"fake": {...}`` (gw passes unknown body fields through unchanged), or,
for requests gw converts, a last user message whose text is ``FAKE {...}``:

``status``         4xx/5xx: answer that status with an OpenAI error body
``message``        overrides that error's message
``delay_s``        sleep before sending the response headers
``chunks``         N content chunks ``w0 w1 ...``; ``content``: explicit content
``chunk_delay_s``  sleep between stream events
``fault``          reset_before_headers | close_before_headers | hang |
                   reset_mid_stream | stall_mid_stream | garbage_mid_stream |
                   error_event | truncate  (mid-stream ones act after ``after``
                   content chunks, default 2)
``split``          "bytes" (one byte per write) | "random" (1..7 bytes, ``seed``)
``crlf``           CRLF line ends in the SSE framing
``comments``       a ``: keep-alive`` comment before every event
``multiline``      every JSON payload split across two ``data:`` lines
``tool_calls``     ``[{"name": N, "arguments": str|obj}]``: answer with these tool
                   calls (after any content; finish_reason ``tool_calls``); streamed
                   as a first delta with id and name, then the arguments in two halves
``quote_tools``    a tool round trip in one mode: a request whose last messages are
                   tool results is answered ``fake: <tool_call_id>=<content>`` (each,
                   space-separated) without the ``tool_calls``, which answer the others

``retry_after``    the ``retry-after`` header of a 429 answer (default "1")
``azure_filter``   "async": on the Azure routes, the asynchronous content filter's
                   stream (below)

Routes: ``POST /v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``,
``GET /v1/models``; the Responses API (``tests.fakes.responses_api``): ``POST
/v1/responses``, ``/v1/responses/input_tokens``, ``/v1/responses/compact``, ``GET``/``DELETE
/v1/responses/{id}``, ``POST /v1/responses/{id}/cancel``, Azure's ``POST
/openai/v1/responses``; Azure: ``POST /openai/deployments/{d}/chat/completions``,
``.../completions``, ``.../embeddings`` and ``GET /openai/models`` (Azure's
models list), each with ``?api-version=`` and the ``api-key`` header.

The Azure routes answer as Azure OpenAI does, with its content-filter
annotations and its keys sorted: a whole answer has ``prompt_filter_results``
and a ``content_filter_results`` per choice; a stream begins with a chunk whose
``object``, ``id`` and ``model`` are empty and ``created`` is 0, with
``"choices": []`` and only the ``prompt_filter_results``, and every choice of
the chunks after it has ``content_filter_results`` (``{}`` on the role and
finish chunks). With ``azure_filter: "async"`` the content chunks have none;
instead annotation chunks (empty ``object``/``id``/``model``, ``created`` 0,
choices without ``delta`` that carry ``content_filter_results`` and
``content_filter_offsets``) come after half of the content and after the
finish chunk.

Admin routes (not recorded): ``GET /_fake/requests``, ``GET /_fake/stats``,
``POST /_fake/reset`` (also clears the mode), ``GET``/``POST /_fake/mode``.

The mode: a process-wide directive for the requests that carry none of their
own, so a test can make one backend fail whatever it is sent::

    POST /_fake/mode  {"status": 503}                       every request: 503
    POST /_fake/mode  {"fault": "hang", "times": 2}         the next two hang
    POST /_fake/mode  {"status": 429, "retry_after": "1"}   429, retry-after: 1
    POST /_fake/mode  {}                                    cleared
    GET  /_fake/mode  -> the mode, ``times`` = how many are left; {} when none

Its keys are the directive's (above), plus ``times`` (the next N requests,
then it clears itself; absent: until changed). A request's own directive
(``fake``, even ``{}``, or ``FAKE {...}``) wins. Requests under the mode are
recorded and counted as usual. On the routes that answer without a stream
(``GET /v1/models``, ``GET /openai/models``, and the other fakes' model lists,
version and embeddings), the mode acts with ``status``, ``delay_s`` and the
faults before the headers; other faults give the normal answer there.
``FakeUpstream.set_mode(**directive)`` / ``clear_mode()`` post it.

Counters: ``requests`` (recorded requests), ``streams_started`` (stream
headers sent), ``streams_completed`` (the fake wrote the whole stream it
planned, including the clean ends of ``truncate`` and ``error_event``),
``client_disconnects`` (the client went away while a request was still in
progress: during ``delay_s``, a ``hang``/``stall``, or a slow stream).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson

from tests.fakes import responses_api
from tests.fakes.server import (
    MID_STREAM_FAULTS,
    RESET_GRACE_S,
    WORD_RE,
    State,
    Writer,
    head_bytes,
    http_chunk,
    run,
)

MAX_HEAD = 64 * 1024

MODELS = [
    {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
    {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
    {"id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system"},
]
MODELS_BODY = orjson.dumps({"object": "list", "data": MODELS})


def _azure_model(id_: str, created_at: int, chat: bool) -> dict:
    return {
        "status": "succeeded",
        "capabilities": {
            "fine_tune": False, "inference": True, "completion": False,
            "chat_completion": chat, "embeddings": not chat,
        },
        "lifecycle_status": "generally-available",
        "deprecation": {"inference": created_at + 2 * 365 * 86400},
        "id": id_,
        "created_at": created_at,
        "object": "model",
    }  # fmt: skip


# Azure's data-plane models list (``GET /openai/models?api-version=...``)
AZURE_MODELS_BODY = orjson.dumps({"object": "list", "data": [
    _azure_model("gpt-4o-mini-2024-07-18", 1721260800, True),
    _azure_model("gpt-4o-2024-08-06", 1722902400, True),
    _azure_model("text-embedding-3-small", 1705948800, False),
]})  # fmt: skip

AZURE_404 = orjson.dumps({"error": {"code": "404", "message": "Resource not found"}})

# Azure OpenAI's content-filter annotations (default filter configuration, nothing flagged)
_SAFE = {"filtered": False, "severity": "safe"}
_NOT_DETECTED = {"filtered": False, "detected": False}
AZURE_PROMPT_FILTER_RESULTS = [{"prompt_index": 0, "content_filter_results": {
    "hate": _SAFE, "jailbreak": _NOT_DETECTED, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE,
}}]  # fmt: skip
AZURE_OUTPUT_FILTER_RESULTS = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
AZURE_ANSWER_FILTER_RESULTS = {
    **AZURE_OUTPUT_FILTER_RESULTS,
    "protected_material_code": _NOT_DETECTED,
    "protected_material_text": _NOT_DETECTED,
}


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def error_type_for(status: int) -> tuple[str, str | None]:
    """OpenAI's error ``type`` and ``code`` for a status."""
    if status == 401:
        return "authentication_error", "invalid_api_key"
    if status == 403:
        return "permission_error", None
    if status == 404:
        return "not_found_error", None
    if status == 429:
        return "rate_limit_error", "rate_limit_exceeded"
    if status >= 500:
        return "server_error", None
    return "invalid_request_error", None


INVALID_KEY_BODY = error_body(
    "Incorrect API key provided. You can find your API key at "
    "https://platform.openai.com/account/api-keys.",
    "invalid_request_error",
    None,
    "invalid_api_key",
)
MISSING_KEY_BODY = error_body(
    "You didn't provide an API key. You need to provide your API key in an "
    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    "invalid_request_error",
    None,
    "invalid_api_key",
)
BAD_JSON_BODY = error_body(
    "We could not parse the JSON body of your request. (HINT: This likely means you "
    "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
    "but what was sent was not valid JSON.)",
    "invalid_request_error",
)


# ---------------------------------------------------------------- helpers


def message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return " ".join(parts)
    return ""


def text_directive(messages: list) -> dict | None:
    """``FAKE {...}`` opening the last user message's text steers like ``fake``:
    the way to steer requests gw converts (``/v1/messages``), whose own body
    fields never reach this fake."""
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            text = message_text(m.get("content"))
            if not text.startswith("FAKE "):
                return None
            try:
                value = orjson.loads(text[5:])
            except orjson.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None


def decode_chunked(buf: bytes) -> tuple[bytes, int] | None:
    """Decode a complete chunked body at the start of ``buf``.

    Returns (body, bytes consumed), or None if more data is needed.
    Raises ValueError on malformed framing.
    """
    pos = 0
    parts = []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(buf[pos:eol].split(b";", 1)[0].strip(), 16)
        pos = eol + 2
        if size == 0:
            # trailers, ended by an empty line
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return b"".join(parts), eol + 2
                pos = eol + 2
        if len(buf) < pos + size + 2:
            return None
        parts.append(buf[pos : pos + size])
        if buf[pos + size : pos + size + 2] != b"\r\n":
            raise ValueError("bad chunk terminator")
        pos += size + 2


def _trailing_tool_results(messages: list) -> str:
    """``<tool_call_id>=<content>`` of the tool messages that end ``messages`` ("" when none)."""
    results: list[str] = []
    for m in reversed(messages):
        if not isinstance(m, dict) or m.get("role") != "tool":
            break
        results.append(f"{m.get('tool_call_id')}={message_text(m.get('content'))}")
    return " ".join(reversed(results))


class Chat:
    """What one chat request answers."""

    __slots__ = (
        "rid", "cid", "created", "model", "chunks", "finish", "usage",
        "include_usage", "stream", "tool_calls", "filter",
    )

    def __init__(self, rid: str, cid: str, body: dict, model: str, fake: dict | None, azure: bool = False) -> None:
        self.rid, self.cid = rid, cid
        # Azure's content filter: None (not Azure), "default" or "async" (see the module doc)
        self.filter = ("async" if (fake or {}).get("azure_filter") == "async" else "default") if azure else None
        self.created = int(time.time())
        self.model = model
        messages = body["messages"]
        prompt_words = 0
        last_user = ""
        for m in messages:
            if isinstance(m, dict):
                text = message_text(m.get("content"))
                prompt_words += len(text.split())
                if m.get("role") == "user":
                    last_user = text
        if fake and fake.get("chunks") is not None:
            n = int(fake["chunks"])
            chunks = [f"w{i} " for i in range(n)]
            if chunks:
                chunks[-1] = chunks[-1][:-1]
        else:
            quoted = _trailing_tool_results(messages) if fake and fake.get("quote_tools") else None
            if fake and isinstance(fake.get("content"), str):
                content = fake["content"]
            elif quoted:
                content = "fake: " + quoted
            else:
                content = "fake: " + last_user
            chunks = WORD_RE.findall(content)
            lead = content[: len(content) - len(content.lstrip())]
            if lead:
                if chunks:
                    chunks[0] = lead + chunks[0]
                else:
                    chunks = [lead]
        self.finish = "stop"
        limit = body.get("max_completion_tokens")
        if limit is None:
            limit = body.get("max_tokens")
        if isinstance(limit, int) and not isinstance(limit, bool) and 0 <= limit < len(chunks):
            chunks = chunks[:limit]
            if chunks:
                chunks[-1] = chunks[-1].rstrip()
            self.finish = "length"
        self.chunks = chunks
        self.tool_calls: list[dict] = []
        quoting = bool(fake and fake.get("quote_tools") and _trailing_tool_results(messages))
        for i, call in enumerate([] if quoting else (fake or {}).get("tool_calls") or []):
            args = call.get("arguments", "")
            self.tool_calls.append({
                "id": f"call_{self.cid[-12:]}{i}",
                "type": "function",
                "function": {"name": call["name"], "arguments": args if isinstance(args, str) else orjson.dumps(args).decode()},
            })
        if self.tool_calls:
            self.finish = "tool_calls"
        self.usage = {
            "prompt_tokens": prompt_words,
            "completion_tokens": len(chunks),
            "total_tokens": prompt_words + len(chunks),
        }
        self.stream = body.get("stream") is True
        so = body.get("stream_options")
        self.include_usage = self.stream and isinstance(so, dict) and so.get("include_usage") is True

    @property
    def content(self) -> str:
        return "".join(self.chunks)

    def completion(self) -> bytes:
        return self.dumps(
            {
                "id": self.cid,
                "object": "chat.completion",
                "created": self.created,
                "model": self.model,
                "choices": [
                    {
                        "index": 0,
                        "message": self.message(),
                        "logprobs": None,
                        "finish_reason": self.finish,
                    }
                ],
                "usage": self.usage,
                "system_fingerprint": "fp_fake",
            },
            answer=True,
        )

    def dumps(self, obj: dict[str, Any], results: dict | None = None, answer: bool = False) -> bytes:
        """An answer or chunk as this route sends it: on Azure's, with the filter's
        annotations (``results`` on each choice; ``answer``: a whole answer) and sorted keys."""
        if self.filter is None:
            return orjson.dumps(obj)
        if answer:
            obj["prompt_filter_results"] = AZURE_PROMPT_FILTER_RESULTS
            results = AZURE_ANSWER_FILTER_RESULTS
        if results is not None:
            for choice in obj["choices"]:
                choice["content_filter_results"] = results
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)

    def results(self, content: bool = True) -> dict | None:
        """The ``content_filter_results`` of a chunk's choice (``{}`` on the role and finish chunks)."""
        if self.filter == "default":
            return AZURE_OUTPUT_FILTER_RESULTS if content else {}
        return None  # not Azure, or the async filter: annotation chunks carry them

    def head_payloads(self) -> list[bytes]:
        """What comes before the role chunk: Azure's prompt filter results."""
        if self.filter is None:
            return []
        return [orjson.dumps({
            "choices": [], "created": 0, "id": "", "model": "", "object": "",
            "prompt_filter_results": AZURE_PROMPT_FILTER_RESULTS,
        })]  # fmt: skip

    def annotation_payload(self, start: int, end: int) -> bytes:
        """An annotation chunk of Azure's asynchronous filter over the text ``start:end``."""
        return orjson.dumps({
            "choices": [{
                "content_filter_offsets": {"check_offset": end, "end_offset": end, "start_offset": start},
                "content_filter_results": AZURE_OUTPUT_FILTER_RESULTS,
                "finish_reason": None, "index": 0,
            }],
            "created": 0, "id": "", "model": "", "object": "",
        })  # fmt: skip

    def with_annotations(self, payloads: list[bytes]) -> list[bytes]:
        """The content payloads, with the async filter's annotation after the first half."""
        if self.filter != "async" or len(self.chunks) < 2:
            return payloads
        half = len(self.chunks) // 2
        return [*payloads[:half], self.annotation_payload(0, len("".join(self.chunks[:half]))), *payloads[half:]]

    def tail_payloads(self) -> list[bytes]:
        """What comes after the finish chunk: the async filter's last annotation."""
        if self.filter != "async":
            return []
        return [self.annotation_payload(0, len(self.content))]

    def message(self) -> dict:
        if not self.tool_calls:
            return {"role": "assistant", "content": self.content, "refusal": None}
        return {"role": "assistant", "content": self.content or None, "refusal": None, "tool_calls": self.tool_calls}

    def _chunk(self, delta: dict, finish: str | None, results: dict | None = None) -> bytes:
        obj: dict[str, Any] = {
            "id": self.cid,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            obj["usage"] = None
        return self.dumps(obj, results)

    def role_payload(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""}, None, self.results(False))

    def content_payloads(self) -> list[bytes]:
        results = self.results()
        out = self.with_annotations([self._chunk({"content": c}, None, results) for c in self.chunks])
        for i, call in enumerate(self.tool_calls):
            fn = call["function"]
            out.append(self._chunk({"tool_calls": [{
                "index": i, "id": call["id"], "type": "function",
                "function": {"name": fn["name"], "arguments": ""},
            }]}, None, results))
            args = fn["arguments"]
            for part in (args[: len(args) // 2], args[len(args) // 2 :]):
                if part:
                    out.append(self._chunk(
                        {"tool_calls": [{"index": i, "function": {"arguments": part}}]}, None, results))
        return out

    def finish_payload(self) -> bytes:
        return self._chunk({}, self.finish, self.results(False))

    def usage_payload(self) -> bytes:
        return self.dumps(
            {
                "id": self.cid,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": "fp_fake",
                "choices": [],
                "usage": self.usage,
            }
        )


class Completion(Chat):
    """What one legacy ``/v1/completions`` request answers (``fake: <prompt>``)."""

    __slots__ = ()

    def __init__(self, rid: str, cid: str, body: dict, model: str, fake: dict | None, azure: bool = False) -> None:
        prompt = body.get("prompt")
        text = prompt if isinstance(prompt, str) else " ".join(p for p in prompt if isinstance(p, str))
        super().__init__(rid, "cmpl-" + cid.removeprefix("chatcmpl-"), {**body, "messages": [{"role": "user", "content": text}]}, model, fake, azure)

    def completion(self) -> bytes:
        return self.dumps({
            "id": self.cid, "object": "text_completion", "created": self.created, "model": self.model,
            "choices": [{"text": self.content, "index": 0, "logprobs": None, "finish_reason": self.finish}],
            "usage": self.usage, "system_fingerprint": "fp_fake",
        }, answer=True)

    def _text(self, text: str, finish: str | None, results: dict | None = None) -> bytes:
        obj: dict[str, Any] = {
            "id": self.cid, "object": "text_completion", "created": self.created, "model": self.model,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
            "system_fingerprint": "fp_fake",
        }
        if self.include_usage:
            obj["usage"] = None
        return self.dumps(obj, results)

    def role_payload(self) -> bytes:
        return self._text("", None, self.results(False))

    def content_payloads(self) -> list[bytes]:
        results = self.results()
        return self.with_annotations([self._text(c, None, results) for c in self.chunks])

    def finish_payload(self) -> bytes:
        return self._text("", self.finish, self.results(False))

    def usage_payload(self) -> bytes:
        return self.dumps({
            "id": self.cid, "object": "text_completion", "created": self.created, "model": self.model,
            "choices": [], "usage": self.usage, "system_fingerprint": "fp_fake",
        })


def embeddings_body(body: dict, model: str) -> bytes | None:
    inp = body.get("input")
    if isinstance(inp, str) or (isinstance(inp, list) and inp and isinstance(inp[0], int)):
        inputs = [inp]
    elif isinstance(inp, list) and inp:
        inputs = inp
    else:
        return None
    dims = body.get("dimensions") if isinstance(body.get("dimensions"), int) else 8
    as_b64 = body.get("encoding_format") == "base64"
    data = []
    words = 0
    for i, item in enumerate(inputs):
        text = item if isinstance(item, str) else " ".join(map(str, item))
        words += len(text.split())
        digest = hashlib.sha256(text.encode()).digest()
        vec = [(digest[j % 32] - 128) / 128.0 for j in range(dims)]
        emb: Any = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode() if as_b64 else vec
        data.append({"object": "embedding", "index": i, "embedding": emb})
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": words, "total_tokens": words},
        }
    )


class SSE:
    """SSE framing options."""

    __slots__ = ("le", "comments", "multiline")

    def __init__(self, fake: dict | None) -> None:
        fake = fake or {}
        self.le = b"\r\n" if fake.get("crlf") else b"\n"
        self.comments = bool(fake.get("comments"))
        self.multiline = bool(fake.get("multiline"))

    def event(self, payload: bytes) -> bytes:
        le = self.le
        if self.multiline:
            cut = payload.find(b",")
            if cut > 0:
                return b"data: " + payload[: cut + 1] + le + b"data: " + payload[cut + 1 :] + le + le
        return b"data: " + payload + le + le

    def comment(self) -> bytes:
        return b": keep-alive" + self.le + self.le


PLAIN_SSE = SSE(None)


# ---------------------------------------------------------------- protocol


class FakeProtocol(asyncio.Protocol):
    def __init__(self, state: State) -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.head: tuple | None = None
        self.busy = False
        self.closed = False
        self.task: asyncio.Task | None = None
        self.self_closed = False  # the fake ended the connection on purpose
        self.keep_alive = True
        self.sent_continue = False

    # -- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def data_received(self, data: bytes) -> None:
        self.buf = self.buf + data if self.buf else data
        if not self.busy:
            self.process()

    # -- parsing

    def process(self) -> None:
        while not self.busy and not self.closed:
            if self.head is None:
                idx = self.buf.find(b"\r\n\r\n")
                if idx < 0:
                    if len(self.buf) > MAX_HEAD:
                        self.fail(431, "request header too large")
                    return
                try:
                    self.head = self.parse_head(self.buf[:idx])
                except ValueError:
                    self.fail(400, "malformed request")
                    return
                self.buf = self.buf[idx + 4 :]
                self.sent_continue = False
            method, target, headers, length, chunked = self.head
            if chunked:
                try:
                    res = decode_chunked(self.buf)
                except ValueError:
                    self.fail(400, "malformed chunked body")
                    return
                if res is None:
                    self.maybe_continue(headers)
                    return
                body, used = res
                self.buf = self.buf[used:]
            else:
                if len(self.buf) < length:
                    self.maybe_continue(headers)
                    return
                body = self.buf[:length]
                self.buf = self.buf[length:]
            self.head = None
            self.dispatch(method, target, headers, body)
            if not self.busy and not self.keep_alive and not self.closed:
                self.self_closed = True
                self.transport.close()
                return

    def parse_head(self, raw: bytes) -> tuple:
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ValueError(lines[0])
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            if not sep:
                raise ValueError(line)
            k = k.strip().lower()
            v = v.strip()
            headers[k] = headers[k] + ", " + v if k in headers else v
        conn = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            self.keep_alive = "keep-alive" in conn
        else:
            self.keep_alive = "close" not in conn
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = 0 if chunked else int(headers.get("content-length", "0") or 0)
        if length < 0:
            raise ValueError("negative content-length")
        return method, target, headers, length, chunked

    def maybe_continue(self, headers: dict) -> None:
        if not self.sent_continue and headers.get("expect", "").lower() == "100-continue":
            self.sent_continue = True
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def fail(self, status: int, message: str) -> None:
        self.keep_alive = False
        self.send(status, error_body(message, "invalid_request_error"), "")
        self.self_closed = True
        self.transport.close()

    # -- responses

    def send(self, status: int, body: bytes, rid: str, extra: list[tuple[str, str]] | None = None,
             content_type: str = "application/json") -> None:
        if self.closed:
            return
        headers = [("content-type", content_type), ("content-length", str(len(body)))]
        if rid:
            headers.append(("x-request-id", rid))
        if extra:
            headers.extend(extra)
        if not self.keep_alive:
            headers.append(("connection", "close"))
        self.transport.write(head_bytes(status, headers) + body)

    def send_error(self, status: int, rid: str, message: str | None = None, retry_after: str | None = None) -> None:
        type_, code = error_type_for(status)
        extra = [("retry-after", retry_after or "1")] if status == 429 else None
        self.send(status, error_body(message or f"fake upstream error {status}", type_, None, code), rid, extra)

    def status_reply(self, status: int, fake: dict, rid: str) -> None:
        """The error answer for a directive's ``status`` (``message``, ``retry_after``); each fake its own."""
        self.send_error(status, rid, fake.get("message"), fake.get("retry_after"))

    def stream_head(self, rid: str) -> bytes:
        headers = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("transfer-encoding", "chunked"),
            ("cache-control", "no-cache"),
            ("x-request-id", rid),
        ]
        if not self.keep_alive:
            headers.append(("connection", "close"))
        return head_bytes(200, headers)

    # -- routing

    def admin(self, method: str, path: str, raw: bytes = b"") -> bool:
        """Answer a ``/_fake/`` admin route; False when there is none by that name."""
        state = self.state
        if method == "GET" and path == "/_fake/requests":
            self.send(200, orjson.dumps(list(state.recorded)), "")
        elif method == "GET" and path == "/_fake/stats":
            self.send(200, orjson.dumps(state.stats), "")
        elif method == "POST" and path == "/_fake/reset":
            state.reset()
            self.send(200, b'{"ok":true}', "")
        elif method == "GET" and path == "/_fake/mode":
            self.send(200, orjson.dumps(state.mode_view()), "")
        elif method == "POST" and path == "/_fake/mode":
            try:
                obj = orjson.loads(raw or b"{}")
                if not isinstance(obj, dict):
                    raise ValueError("the mode must be a JSON object")
                state.set_mode(obj)
            except ValueError as exc:  # orjson.JSONDecodeError is one
                self.send(400, orjson.dumps({"error": str(exc)}), "")
            else:
                self.send(200, orjson.dumps(state.mode_view()), "")
        else:
            return False
        return True

    def record(self, method: str, path: str, query: dict, headers: dict, raw: bytes) -> Any:
        """Record and count a request; its JSON body (None when it is not JSON)."""
        body: Any = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = None
        self.state.recorded.append({"method": method, "path": path, "query": query, "headers": headers, "body": body})
        self.state.stats["requests"] += 1
        return body

    def dispatch(self, method: str, target: str, headers: dict, raw: bytes) -> None:
        path, _, qs = target.partition("?")
        state = self.state

        if path.startswith("/_fake/"):
            if not self.admin(method, path, raw):
                self.send(404, error_body(f"Invalid URL ({method} {path})", "invalid_request_error"), "")
            return

        body: Any = None
        body_text = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body_text = raw.decode("utf-8", "replace")
        query = dict(parse_qsl(qs, keep_blank_values=True)) if qs else {}
        rec = {"method": method, "path": path, "query": query, "headers": headers, "body": body}
        if body_text is not None:
            rec["body_text"] = body_text
        state.recorded.append(rec)
        state.stats["requests"] += 1

        rid, cid = state.next_ids()
        kind = None
        azure = False
        deployment = None
        if path == "/v1/chat/completions" and method == "POST":
            kind = "chat"
        elif path == "/v1/completions" and method == "POST":
            kind = "completions"
        elif path == "/v1/embeddings" and method == "POST":
            kind = "embeddings"
        elif path in ("/v1/responses", "/openai/v1/responses") and method == "POST":
            kind = "responses"
            azure = path.startswith("/openai/")
        elif path == "/v1/responses/input_tokens" and method == "POST":
            kind = "input_tokens"
        elif path == "/v1/responses/compact" and method == "POST":
            kind = "compact"
        elif path.startswith("/v1/responses/") and method in ("GET", "DELETE", "POST"):
            kind = "stored"
        elif path == "/v1/models" and method == "GET":
            kind = "models"
        elif path == "/openai/models" and method == "GET":
            kind = "models"
            azure = True
        elif path.startswith("/openai/deployments/") and method == "POST":
            rest = path[len("/openai/deployments/") :]
            deployment, _, op = rest.partition("/")
            if deployment and op in ("chat/completions", "completions", "embeddings"):
                kind = "chat" if op == "chat/completions" else op
                azure = True
        if kind is None:
            if path.startswith("/openai/"):
                self.send(404, AZURE_404, rid)
            else:
                self.send(404, error_body(f"Invalid URL ({method} {path})", "invalid_request_error"), rid)
            return

        if azure:
            if not query.get("api-version") and kind != "responses":  # Azure's v1 API takes none
                self.send(404, AZURE_404, rid)
                return
            if state.api_key is not None and headers.get("api-key") != state.api_key:
                self.send(401, INVALID_KEY_BODY, rid)
                return
        elif state.bearer is not None:
            auth = headers.get("authorization")
            if auth != state.bearer:
                self.send(401, INVALID_KEY_BODY if auth else MISSING_KEY_BODY, rid)
                return

        if kind == "models":
            models = AZURE_MODELS_BODY if azure else MODELS_BODY
            self.answer(state.take_mode(), lambda: self.send(200, models, rid), rid)
            return
        if kind == "stored":
            self.stored_response(method, path[len("/v1/responses/") :], rid)
            return
        if kind == "input_tokens":
            self.send(200, responses_api.input_tokens(body if isinstance(body, dict) else {}), rid)
            return
        if kind == "compact":
            self.send(200, responses_api.compacted(body if isinstance(body, dict) else {}, "resp_" + cid[9:]), rid)
            return

        if not isinstance(body, dict):
            self.send(400, BAD_JSON_BODY, rid)
            return
        if azure and kind != "responses":  # Azure's v1 Responses API takes the deployment as `model`
            model = deployment
        else:
            model = body.get("model")
            if not isinstance(model, str) or not model:
                self.send(400, error_body("you must provide a model parameter", "invalid_request_error"), rid)
                return

        fake = body.get("fake")
        if kind == "responses":
            chat_body = responses_api.chat_body(body)
            if fake is None:
                fake = text_directive(chat_body["messages"])
        elif fake is None and isinstance(body.get("messages"), list):
            fake = text_directive(body["messages"])
        if fake is not None and not isinstance(fake, dict):
            self.send(400, error_body("fake must be an object", "invalid_request_error", "fake"), rid)
            return
        if fake is None:
            fake = state.take_mode()

        if kind == "embeddings":
            out = embeddings_body(body, model)
            if out is None:
                self.send(400, error_body("'input' is a required property", "invalid_request_error", "input"), rid)
                return
            if fake:
                self.start(self.run_fake(fake, rid, None, out))
            else:
                self.send(200, out, rid)
            return

        if kind == "responses":
            answer = responses_api.ResponsesAnswer(Chat(rid, cid, chat_body, model, fake), body)
            state.responses[answer.id] = answer.response()
            if len(state.responses) > 1000:
                state.responses.pop(next(iter(state.responses)))
            if fake:
                self.start(self.run_responses(fake, rid, answer, body.get("stream") is True))
            elif body.get("stream") is True:
                self.stream_responses_sync(rid, answer)
            else:
                self.send(200, orjson.dumps(answer.response()), rid)
            return

        if kind == "completions":
            prompt = body.get("prompt")
            if not (isinstance(prompt, str) or isinstance(prompt, list) and prompt):
                self.send(400, error_body("'prompt' is a required property", "invalid_request_error", "prompt"), rid)
                return
            chat: Chat = Completion(rid, cid, body, model, fake, azure)
        else:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                self.send(400, error_body(
                    "'messages' is a required property and must be a non-empty array",
                    "invalid_request_error", "messages"), rid)
                return
            chat = Chat(rid, cid, body, model, fake, azure)
        if fake:
            self.start(self.run_fake(fake, rid, chat, None))
        elif chat.stream:
            self.stream_sync(chat)
        else:
            self.send(200, chat.completion(), rid)

    # -- fast stream (no fake field): every event its own write, no awaits

    def stream_sync(self, chat: Chat) -> None:
        st = self.state.stats
        w = self.transport.write
        w(self.stream_head(chat.rid))
        st["streams_started"] += 1
        ev = PLAIN_SSE.event
        for p in chat.head_payloads():
            w(http_chunk(ev(p)))
        w(http_chunk(ev(chat.role_payload())))
        for p in chat.content_payloads():
            w(http_chunk(ev(p)))
        w(http_chunk(ev(chat.finish_payload())))
        for p in chat.tail_payloads():
            w(http_chunk(ev(p)))
        if chat.include_usage:
            w(http_chunk(ev(chat.usage_payload())))
        w(http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        st["streams_completed"] += 1

    # -- slow path

    def start(self, coro) -> None:
        self.busy = True
        self.task = asyncio.get_running_loop().create_task(coro)
        self.task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.task = None
        self.busy = False
        if not task.cancelled() and task.exception() is not None:
            print(f"fake: handler failed: {task.exception()!r}", file=sys.stderr, flush=True)
            if not self.closed:
                self.transport.abort()
            return
        if self.closed:
            return
        if not self.keep_alive:
            self.self_closed = True
            self.transport.close()
        elif self.buf:
            self.process()

    def reset_now(self) -> None:
        self.self_closed = True
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.transport.abort()

    def close_now(self) -> None:
        self.self_closed = True
        self.transport.close()

    # -- the directive's timing and faults, shared by every fake

    async def delay(self, fake: dict) -> None:
        delay = float(fake.get("delay_s") or 0)
        if delay > 0:
            await asyncio.sleep(delay)

    async def fault_before_headers(self, fault: str | None) -> bool:
        """Act out a fault that comes before any byte of the answer; True when there was one."""
        if fault == "reset_before_headers":
            self.reset_now()
        elif fault == "close_before_headers":
            self.close_now()
        elif fault == "hang":
            await asyncio.get_running_loop().create_future()  # until the client leaves
        else:
            return False
        return True

    def answer(self, fake: dict | None, ok: Callable[[], None], rid: str) -> None:
        """A route answered in one piece (model lists, version, embeddings): ``ok()``
        sends it; under a directive, after its ``delay_s``, its error ``status`` or
        fault before the headers instead."""
        if fake:
            self.start(self._answer(fake, ok, rid))
        else:
            ok()

    async def _answer(self, fake: dict, ok: Callable[[], None], rid: str) -> None:
        try:
            await self.delay(fake)
            status = fake.get("status")
            if isinstance(status, int) and status >= 400:
                self.status_reply(status, fake, rid)
            elif not await self.fault_before_headers(fake.get("fault")):
                ok()
        except asyncio.CancelledError:
            self.count_disconnect()

    def count_disconnect(self) -> None:
        """In ``except asyncio.CancelledError``: the client left, unless the fake ended it."""
        if not self.self_closed:
            self.state.stats["client_disconnects"] += 1

    async def cut_body(self, head: bytes, body: bytes, fault: str) -> None:
        """A head promising the whole body, then half of it, then the fault."""
        self.transport.write(head + body[: len(body) // 2])
        if fault == "reset_mid_stream":
            await asyncio.sleep(RESET_GRACE_S)
            self.reset_now()
        elif fault == "stall_mid_stream":
            await asyncio.get_running_loop().create_future()
        elif fault == "truncate":
            self.close_now()

    async def break_stream(self, out: Writer, fault: str | None) -> bool:
        """Reset or stall a started stream after what was sent; True when it did."""
        if fault == "reset_mid_stream":
            await out.flush()
            await asyncio.sleep(RESET_GRACE_S)
            self.reset_now()
        elif fault == "stall_mid_stream":
            await out.flush()
            await asyncio.get_running_loop().create_future()
        else:
            return False
        return True

    async def run_fake(self, fake: dict, rid: str, chat: Chat | None, plain: bytes | None) -> None:
        try:
            await self.delay(fake)
            status = fake.get("status")
            if isinstance(status, int) and status >= 400:
                self.status_reply(status, fake, rid)
                return
            fault = fake.get("fault")
            if await self.fault_before_headers(fault):
                return
            if fault is not None and fault not in MID_STREAM_FAULTS:
                self.send(400, error_body(f"unknown fake fault {fault!r}", "invalid_request_error", "fake"), rid)
                return
            if chat is not None and chat.stream:
                await self.stream_async(chat, fake, fault)
            else:
                await self.plain_async(rid, chat.completion() if chat else plain, fault)
        except asyncio.CancelledError:
            self.count_disconnect()
            # swallow: the connection is gone, nobody awaits this task

    def stream_responses_sync(self, rid: str, answer: responses_api.ResponsesAnswer) -> None:
        """A Responses stream without a directive: every event its own write, no awaits
        (as ``stream_sync``: the load tests' upstream)."""
        st = self.state.stats
        w = self.transport.write
        w(self.stream_head(rid))
        st["streams_started"] += 1
        for event in answer.head_events():
            w(http_chunk(event))
        for item in answer.item_events():
            for event in item:
                w(http_chunk(event))
        w(http_chunk(answer.final_event()) + b"0\r\n\r\n")
        st["streams_completed"] += 1

    def stored_response(self, method: str, rest: str, rid: str) -> None:
        """GET / DELETE ``/v1/responses/{id}``, POST ``/v1/responses/{id}/cancel``."""
        response_id, _, action = rest.partition("/")
        stored = self.state.responses.get(response_id)
        if stored is None or (method == "POST") != (action == "cancel") or (action and action != "cancel"):
            message = f"No response found with id '{response_id}'."
            self.send(404, error_body(message, "invalid_request_error", "response_id"), rid)
        elif method == "DELETE":
            del self.state.responses[response_id]
            self.send(200, responses_api.deleted(response_id), rid)
        elif action == "cancel":
            self.send(200, orjson.dumps({**stored, "status": "cancelled"}), rid)
        else:
            self.send(200, orjson.dumps(stored), rid)

    async def run_responses(self, fake: dict, rid: str, answer: responses_api.ResponsesAnswer, stream: bool) -> None:
        """A Responses answer under a directive (delay, status, faults), or a stream."""
        try:
            await self.delay(fake)
            status = fake.get("status")
            if isinstance(status, int) and status >= 400:
                self.status_reply(status, fake, rid)
                return
            fault = fake.get("fault")
            if await self.fault_before_headers(fault):
                return
            if not stream:
                await self.plain_async(rid, orjson.dumps(answer.response()), fault)
                return
            out = Writer(self.transport, fake)
            after = int(fake.get("after", 2)) if fault else -1
            st = self.state.stats
            self.transport.write(self.stream_head(rid))
            st["streams_started"] += 1
            for event in answer.head_events():
                await out.send(event)
            for i, event in enumerate(e for item in answer.item_events() for e in item):
                if i == after:
                    break
                await out.pause()
                await out.send(event)
            if await self.break_stream(out, fault):
                return
            if fault == "error_event":
                await out.send(answer.error_event())
            elif fault != "truncate":
                await out.send(answer.final_event())
            await out.end()
            st["streams_completed"] += 1
        except asyncio.CancelledError:
            self.count_disconnect()

    async def plain_async(self, rid: str, body: bytes, fault: str | None) -> None:
        if fault is None:
            self.send(200, body, rid)
            return
        if fault == "garbage_mid_stream":
            self.send(200, b"{not json", rid)
            return
        if fault == "error_event":
            self.send(200, error_body("fake mid-stream error", "server_error"), rid)
            return
        head = head_bytes(200, [("content-type", "application/json"),
                               ("content-length", str(len(body))), ("x-request-id", rid)])
        await self.cut_body(head, body, fault)

    async def stream_async(self, chat: Chat, fake: dict, fault: str | None) -> None:
        sse = SSE(fake)
        out = Writer(self.transport, fake)
        after = int(fake.get("after", 2)) if fault else -1
        st = self.state.stats

        self.transport.write(self.stream_head(chat.rid))
        st["streams_started"] += 1
        first = True

        async def event(payload: bytes) -> None:
            nonlocal first
            if not first:
                await out.pause()
            first = False
            if sse.comments:
                await out.send(sse.comment())
            await out.send(sse.event(payload))

        for payload in chat.head_payloads():
            await event(payload)
        await event(chat.role_payload())
        for i, payload in enumerate(chat.content_payloads()):
            if i == after:
                break
            await event(payload)
        if await self.break_stream(out, fault):
            return
        if fault == "error_event":
            await out.send(sse.event(error_body("fake mid-stream error", "server_error")))
            await out.end()
            st["streams_completed"] += 1
            return
        if fault == "truncate":
            await out.end()
            st["streams_completed"] += 1
            return
        if fault == "garbage_mid_stream":
            await out.send(b"data: {not json" + sse.le + sse.le)
            for payload in chat.content_payloads()[max(after, 0):]:
                await event(payload)
        await event(chat.finish_payload())
        for payload in chat.tail_payloads():
            await event(payload)
        if chat.include_usage:
            await event(chat.usage_payload())
        if sse.comments:
            await out.send(sse.comment())
        await out.send(b"data: [DONE]" + sse.le + sse.le)
        await out.end()
        st["streams_completed"] += 1


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    run(FakeProtocol, "fake OpenAI / Azure OpenAI upstream", argv)


if __name__ == "__main__":
    main()
