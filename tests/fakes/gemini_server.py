"""A wire-level fake of the Google Gemini API (Generative Language API, ``v1beta``).

Run it as a process::

    python -m tests.fakes.gemini_server --host 127.0.0.1 --port 0 [--api-key KEY]

It prints ``LISTENING <port>`` once it accepts connections. In tests::

    with GeminiFake(api_key="AIza-test") as fake:
        client = genai.Client(api_key="AIza-test",
                              http_options=genai.types.HttpOptions(base_url=fake.url))
        # or a gw provider with base_url: {fake.gemini_base_url}

Routes (``v1beta`` or ``v1``): ``POST /models/{m}:generateContent``,
``:streamGenerateContent`` (``?alt=sse``: ``data: {...}\\r\\n\\r\\n`` events,
no ``[DONE]``; without it a JSON array), ``:batchEmbedContents``,
``:embedContent``, ``:countTokens``, ``GET /models`` and ``/models/{m}``. The key is read from
``x-goog-api-key`` or ``?key=``: a missing key is Google's 403
``PERMISSION_DENIED``, a wrong one its 400 ``API_KEY_INVALID``.

Answers: ``fake: <the text of the last user turn>`` (for a turn of function
responses, ``fake: <name>=<response JSON>``), word by word when streamed,
``candidateCount`` candidates, ``maxOutputTokens`` words at most
(``MAX_TOKENS``); usage counts words. Every stream event carries the usage so
far, the last one the finishReason and the full usage.

``:countTokens`` takes ``{"contents": [...]}`` or ``{"generateContentRequest":
{"model": "models/...", "contents", "systemInstruction"?, "tools"?, ...}}`` (not
both; nothing else) and answers ``{"totalTokens": N, "promptTokensDetails":
[{"modality": "TEXT", "tokenCount": N}]}``: the words of the contents and the
system instruction, plus those of each function declaration's name and
description. A directive's ``status``, ``delay_s`` and faults before the
headers apply.

Steering: when the last user turn's text starts with ``FAKE {json}``, the fake
follows that object. The text after it is the prompt; without any, the answer
is ``fake: ok``, or only the function calls when ``tool_calls`` is given.

``status``, ``message``   answer that error status with Google's error body
                          (a 429 carries ``RetryInfo`` ``retry_delay``, default "7s",
                          and a ``retry-after`` header: ``retry_after``, default "7";
                          a ``retry_after`` alone sets both)
``content``, ``chunks``   explicit answer text / N words ``w0 w1 ...``
``tool_calls``            ``[{"name", "arguments"?: obj, "id"?, "thought_signature"?}]``:
                          functionCall parts (after any text), in one event, or one
                          event each with ``tool_events: "separate"``
``thought_signature``     a ``thoughtSignature`` on the first function call (Gemini 3)
``thought``               a ``thought: true`` part first (thoughtsTokenCount = its words)
``finish``                the finishReason (e.g. ``SAFETY``); ``repeat_finish``: one
                          more event repeating it (empty text), as Gemini sometimes does
``block``                 ``promptFeedback.blockReason`` and no candidates
``cached``                cachedContentTokenCount (included in promptTokenCount)
``fault``                 reset_before_headers | close_before_headers | hang |
                          reset_mid_stream | stall_mid_stream | garbage_mid_stream |
                          error_event | truncate (mid-stream ones after ``after``
                          content events, default 2)
``split``                 "bytes" | "random" (1..7 bytes, ``seed``)
``delay_s``, ``chunk_delay_s``

Admin routes as in the OpenAI fake: ``GET /_fake/requests``, ``/_fake/stats``,
``POST /_fake/reset``, and the process-wide mode ``GET``/``POST /_fake/mode``
(a directive for every request without its own, ``times`` N or until
changed; also on ``GET /models``, ``/models/{m}`` and the embedding routes:
see ``tests.fakes.openai_server``).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any
from urllib.parse import parse_qsl, unquote

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


class GeminiFake(FakeUpstream):
    """The Gemini fake as a process: ``with GeminiFake(api_key=K) as fake: fake.gemini_base_url``."""

    module = "tests.fakes.gemini_server"

    @property
    def gemini_base_url(self) -> str:
        return self.url + "/v1beta"


_PATH_RE = re.compile(r"^/(v1beta|v1)/((?:models|tunedModels)/[^/:]+)(?::([A-Za-z]+))?$")
EMBED_DIMENSIONS = 8
LE = b"\r\n"  # Gemini's SSE line end

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
DEFAULT_MESSAGES = {
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}

MODELS = [
    {
        "name": "models/gemini-2.5-flash",
        "version": "001",
        "displayName": "Gemini 2.5 Flash",
        "description": "Stable version of Gemini 2.5 Flash.",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": True,
    },
    {
        "name": "models/gemini-embedding-001",
        "version": "001",
        "displayName": "Gemini Embedding 001",
        "description": "Obtain a distributed representation of a text.",
        "inputTokenLimit": 2048,
        "outputTokenLimit": 1,
        "supportedGenerationMethods": ["embedContent", "countTextTokens", "countTokens"],
    },
]


def pretty(obj: Any) -> bytes:
    """Google's JSON answers are indented by two spaces."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2)


def google_error(code: int, message: str, details: list[dict] | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": STATUS_NAMES.get(code, "UNKNOWN")}
    if details:
        error["details"] = details
    return pretty({"error": error})


INVALID_KEY_MESSAGE = "API key not valid. Please pass a valid API key."
INVALID_KEY_BODY = google_error(
    400,
    INVALID_KEY_MESSAGE,
    [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": INVALID_KEY_MESSAGE},
    ],
)
MISSING_KEY_BODY = google_error(
    403,
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API.",
)
MID_STREAM_ERROR = orjson.dumps(
    {"error": {"code": 500, "message": DEFAULT_MESSAGES[500], "status": "INTERNAL"}}
)


def status_body(status: int, message: str | None, retry_delay: str) -> bytes:
    details = None
    if status == 429:
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests"}],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
        ]
    return google_error(status, message or DEFAULT_MESSAGES.get(status, f"fake upstream error {status}"), details)


# ---------------------------------------------------------------- reading a request


def part_texts(content: Any) -> list[str]:
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p["text"] for p in parts or () if isinstance(p, dict) and isinstance(p.get("text"), str)]


def last_user_text(contents: list) -> str:
    """The text of the last user turn; for function responses ``name=response``."""
    for content in reversed(contents):
        if not isinstance(content, dict) or content.get("role", "user") != "user":
            continue
        texts = part_texts(content)
        if texts:
            return " ".join(texts)
        responses = [
            f"{p['functionResponse'].get('name')}={orjson.dumps(p['functionResponse'].get('response')).decode()}"
            for p in content.get("parts") or ()
            if isinstance(p, dict) and isinstance(p.get("functionResponse"), dict)
        ]
        return " ".join(responses)
    return ""


def count_words(contents: Any, system: Any) -> int:
    words = 0
    for content in [system, *(contents if isinstance(contents, list) else ())]:
        for text in part_texts(content):
            words += len(text.split())
    return words


class Answer:
    """What one generateContent request answers, as Gemini response objects."""

    def __init__(self, body: dict, model: str, response_id: str, fake: dict, prompt: str) -> None:
        self.model = model
        self.response_id = response_id
        self.fake = fake
        config = body.get("generationConfig") or {}
        self.n = int(config.get("candidateCount") or 1)
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
                text = ""  # only the function calls
            words = WORD_RE.findall(text)
            lead = text[: len(text) - len(text.lstrip())]
            if lead:
                words = [lead + words[0], *words[1:]] if words else [lead]
        self.finish = "STOP"
        limit = config.get("maxOutputTokens")
        if isinstance(limit, int) and 0 <= limit < len(words):
            words = words[:limit]
            if words:
                words[-1] = words[-1].rstrip()
            self.finish = "MAX_TOKENS"
        if isinstance(fake.get("finish"), str):
            self.finish = fake["finish"]
        self.words = words
        self.thought = fake.get("thought") if isinstance(fake.get("thought"), str) else None
        self.calls: list[dict] = []
        for i, call in enumerate(fake.get("tool_calls") or ()):
            part: dict[str, Any] = {"functionCall": {"name": call["name"]}}
            if call.get("id"):
                part["functionCall"]["id"] = call["id"]
            if "arguments" in call:
                part["functionCall"]["args"] = call["arguments"]
            signature = call.get("thought_signature") or (fake.get("thought_signature") if i == 0 else None)
            if signature:
                part["thoughtSignature"] = signature
            self.calls.append(part)
        cached = int(fake.get("cached") or 0)
        self.prompt_tokens = count_words(body.get("contents"), body.get("systemInstruction")) + cached
        self.cached = cached
        self.thoughts = len(self.thought.split()) if self.thought else 0

    def usage(self, words: int) -> dict:
        usage: dict[str, Any] = {"promptTokenCount": self.prompt_tokens}
        if words:
            usage["candidatesTokenCount"] = words
        total = self.prompt_tokens + words
        if self.thoughts:
            usage["thoughtsTokenCount"] = self.thoughts
            total += self.thoughts
        usage["totalTokenCount"] = total
        if self.cached:
            usage["cachedContentTokenCount"] = self.cached
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.prompt_tokens}]
        return usage

    def response(self, parts: list[dict] | None, finish: str | None, words: int) -> dict:
        candidates = []
        for index in range(self.n):
            candidate: dict[str, Any] = {}
            if parts is not None:
                candidate["content"] = {"parts": parts, "role": "model"}
            if finish is not None:
                candidate["finishReason"] = finish
            candidate["index"] = index
            candidates.append(candidate)
        return {
            "candidates": candidates,
            "usageMetadata": self.usage(words),
            "modelVersion": self.model,
            "responseId": self.response_id,
        }

    def blocked(self) -> dict:
        return {
            "promptFeedback": {
                "blockReason": self.fake["block"],
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
                ],
            },
            "usageMetadata": {"promptTokenCount": self.prompt_tokens, "totalTokenCount": self.prompt_tokens},
            "modelVersion": self.model,
            "responseId": self.response_id,
        }

    def whole(self) -> dict:
        if self.fake.get("block"):
            return self.blocked()
        parts: list[dict] = []
        if self.thought:
            parts.append({"text": self.thought, "thought": True})
        if self.words:
            parts.append({"text": "".join(self.words)})
        parts.extend(self.calls)
        return self.response(parts, self.finish, len(self.words))

    def content_events(self) -> list[dict]:
        """The stream's events before the last one (for ``after``), then the last ones."""
        if self.fake.get("block"):
            return [self.blocked()]
        events = []
        if self.thought:
            events.append(self.response([{"text": self.thought, "thought": True}], None, 0))
        words = self.words or [""]
        calls = self.calls
        for i, word in enumerate(words):
            last = i == len(words) - 1 and not calls
            events.append(self.response([{"text": word}], self.finish if last else None, i + 1 if word else 0))
        if calls:
            groups = [[c] for c in calls] if self.fake.get("tool_events") == "separate" else [calls]
            for i, group in enumerate(groups):
                last = i == len(groups) - 1
                events.append(self.response(group, self.finish if last else None, len(self.words)))
        if self.fake.get("repeat_finish"):
            events.append(self.response([{"text": ""}], self.finish, len(self.words)))
        return events


def embedding(text: str, dims: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [(digest[j % 32] - 128) / 128.0 for j in range(dims)]


# ---------------------------------------------------------------- protocol


class GeminiProtocol(FakeProtocol):
    def sse(self, obj: dict | bytes) -> bytes:
        return b"data: " + (obj if isinstance(obj, bytes) else orjson.dumps(obj)) + LE + LE

    def stream_head(self, rid: str) -> bytes:
        headers = [
            ("content-type", "text/event-stream"),
            ("transfer-encoding", "chunked"),
            ("vary", "Origin, X-Origin, Referer"),
            ("server", "scaffolding on HTTPServer2"),
        ]
        if not self.keep_alive:
            headers.append(("connection", "close"))
        return head_bytes(200, headers)

    def reply(self, status: int, body: bytes, retry_after: str | None = None) -> None:
        extra = [("server", "scaffolding on HTTPServer2")]
        if status == 429:
            extra.append(("retry-after", retry_after or "7"))
        self.send(status, body, "", extra, "application/json; charset=UTF-8")

    def status_reply(self, status: int, fake: dict, rid: str) -> None:
        retry_after = fake.get("retry_after")
        retry_delay = fake.get("retry_delay") or (f"{retry_after}s" if retry_after else "7s")
        self.reply(status, status_body(status, fake.get("message"), retry_delay), retry_after)

    def dispatch(self, method: str, target: str, headers: dict, raw: bytes) -> None:
        path, _, qs = target.partition("?")
        state = self.state
        if path.startswith("/_fake/"):
            if not self.admin(method, path, raw):
                self.reply(404, google_error(404, f"no admin route {path}"))
            return

        query = dict(parse_qsl(qs, keep_blank_values=True)) if qs else {}
        body = self.record(method, path, query, headers, raw)
        rid, _ = state.next_ids()

        key = headers.get("x-goog-api-key") or query.get("key")
        if state.api_key is not None:
            if not key:
                self.reply(403, MISSING_KEY_BODY)
                return
            if key != state.api_key:
                self.reply(400, INVALID_KEY_BODY)
                return

        match = _PATH_RE.match(unquote(path))
        if match is None:
            if method == "GET" and path in ("/v1beta/models", "/v1/models"):
                self.answer(state.take_mode(), lambda: self.reply(200, pretty({"models": MODELS})), rid)
            else:
                self.reply(404, google_error(404, f"Method not found: {method} {path}"))
            return
        resource, operation = match.group(2), match.group(3)
        model = resource.split("/", 1)[1]
        if operation is None:
            if method == "GET":
                found = [m for m in MODELS if m["name"] == resource]
                base = found[0] if found else {**MODELS[0], "name": resource}
                self.answer(state.take_mode(), lambda: self.reply(200, pretty(base)), rid)
            else:
                self.reply(404, google_error(404, f"Method not found: {method} {path}"))
            return
        if method != "POST":
            self.reply(404, google_error(404, f"Method not found: {method} {path}"))
            return
        if not isinstance(body, dict):
            self.reply(400, google_error(400, "Invalid JSON payload received. Unexpected token."))
            return
        if operation in ("batchEmbedContents", "embedContent"):
            self.embed(operation, resource, body, rid)
            return
        if operation == "countTokens":
            self.count_tokens(body, rid)
            return
        if operation not in ("generateContent", "streamGenerateContent"):
            self.reply(404, google_error(404, f"Method not found: {operation}"))
            return
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            self.reply(400, google_error(400, "* GenerateContentRequest.contents: contents is not specified\n"))
            return
        try:
            fake, prompt = directive(last_user_text(contents))
        except ValueError as exc:
            self.reply(400, google_error(400, f"fake: {exc}"))
            return
        if fake is None:
            fake = state.take_mode()
        answer = Answer(body, model, "fake" + rid[-20:], fake or {}, prompt)
        sse = query.get("alt") == "sse"
        streaming = operation == "streamGenerateContent"
        if fake:
            self.start(self.run_fake(fake, answer, streaming, sse))
        elif streaming and sse:
            self.stream_sync(answer)
        elif streaming:
            self.reply(200, pretty(answer.content_events()))
        else:
            self.reply(200, pretty(answer.whole()))

    # -- embeddings

    def embed(self, operation: str, resource: str, body: dict, rid: str) -> None:
        requests = body.get("requests") if operation == "batchEmbedContents" else [{**body, "model": resource}]
        if not isinstance(requests, list) or not requests:
            self.reply(400, google_error(400, "* BatchEmbedContentsRequest.requests: requests is not specified\n"))
            return
        vectors = []
        steered = False
        for i, request in enumerate(requests):
            if not isinstance(request, dict) or request.get("model") != resource:
                self.reply(
                    400,
                    google_error(400, f"* BatchEmbedContentsRequest.requests[{i}].model: the model of each request "
                                 f"must be the batch's model ({resource})\n"),
                )
                return
            texts = part_texts(request.get("content"))
            if not texts:
                self.reply(400, google_error(400, f"* requests[{i}].content: contents is not specified\n"))
                return
            text = " ".join(texts)
            fake, _ = directive(text) if text.startswith("FAKE ") else (None, text)
            steered = steered or fake is not None
            if fake and isinstance(fake.get("status"), int):
                self.status_reply(fake["status"], fake, rid)
                return
            dims = request.get("outputDimensionality") or EMBED_DIMENSIONS
            vectors.append({"values": embedding(text, int(dims))})
        out = pretty({"embedding": vectors[0]} if operation == "embedContent" else {"embeddings": vectors})
        self.answer(None if steered else self.state.take_mode(), lambda: self.reply(200, out), rid)

    # -- token counts

    def count_tokens(self, body: dict, rid: str) -> None:
        unknown = sorted(set(body) - {"contents", "generateContentRequest"})
        if unknown:
            self.reply(400, google_error(400, f'Invalid JSON payload received. Unknown name "{unknown[0]}": '
                                         "Cannot find field."))
            return
        request = body.get("generateContentRequest")
        contents, system, tools = body.get("contents"), None, None
        if request is not None:
            if contents is not None:
                self.reply(400, google_error(400, "contents and generate_content_request cannot both be set"))
                return
            if not isinstance(request, dict) or not isinstance(request.get("model"), str):
                self.reply(400, google_error(400, "* CountTokensRequest.generate_content_request.model: "
                                             "model is not specified\n"))
                return
            contents, system, tools = request.get("contents"), request.get("systemInstruction"), request.get("tools")
        if not isinstance(contents, list) or not contents:
            self.reply(400, google_error(400, "* CountTokensRequest.contents: contents is not specified\n"))
            return
        try:
            fake, _ = directive(last_user_text(contents))
        except ValueError as exc:
            self.reply(400, google_error(400, f"fake: {exc}"))
            return
        total = count_words(contents, system)
        for tool in tools if isinstance(tools, list) else ():
            for declaration in tool.get("functionDeclarations") or () if isinstance(tool, dict) else ():
                for field in ("name", "description"):
                    if isinstance(declaration.get(field), str):
                        total += len(declaration[field].split())
        out = pretty({"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]})
        self.answer(fake or self.state.take_mode(), lambda: self.reply(200, out), rid)

    # -- fast stream (no directive): every event its own write, no awaits

    def stream_sync(self, answer: Answer) -> None:
        st = self.state.stats
        w = self.transport.write
        w(self.stream_head(""))
        st["streams_started"] += 1
        for event in answer.content_events():
            w(http_chunk(self.sse(event)))
        w(b"0\r\n\r\n")
        st["streams_completed"] += 1

    # -- directed answers

    async def run_fake(self, fake: dict, answer: Answer, streaming: bool, sse: bool) -> None:
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
                self.reply(400, google_error(400, f"unknown fake fault {fault!r}"))
                return
            if streaming and sse:
                await self.stream_async(answer, fake, fault)
            elif streaming:
                self.reply(200, pretty(answer.content_events()))
            else:
                await self.whole_async(pretty(answer.whole()), fault)
        except asyncio.CancelledError:
            self.count_disconnect()

    async def whole_async(self, body: bytes, fault: str | None) -> None:
        if fault is None:
            self.reply(200, body)
            return
        if fault == "garbage_mid_stream":
            self.reply(200, b"{not json")
            return
        if fault == "error_event":
            self.reply(200, pretty({"error": orjson.loads(MID_STREAM_ERROR)["error"]}))
            return
        head = head_bytes(200, [("content-type", "application/json; charset=UTF-8"), ("content-length", str(len(body)))])
        await self.cut_body(head, body, fault)

    async def stream_async(self, answer: Answer, fake: dict, fault: str | None) -> None:
        out = Writer(self.transport, fake)
        after = int(fake.get("after", 2)) if fault else -1
        st = self.state.stats
        self.transport.write(self.stream_head(""))
        st["streams_started"] += 1
        events = answer.content_events()
        for i, event in enumerate(events):
            if i == after:
                break
            if i:
                await out.pause()
            await out.send(self.sse(event))
        else:
            fault = None  # the stream was shorter than ``after``: it ends normally
        if await self.break_stream(out, fault):
            return
        if fault == "error_event":
            await out.send(self.sse(MID_STREAM_ERROR))
        elif fault == "garbage_mid_stream":
            await out.send(b"data: {not json" + LE + LE)
            for event in events[after:]:
                await out.send(self.sse(event))
        await out.end()
        st["streams_completed"] += 1


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    run(GeminiProtocol, "fake Google Gemini upstream", argv)


if __name__ == "__main__":
    main()
