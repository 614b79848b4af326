"""A wire-level fake of Anthropic's Messages API (``POST /v1/messages``, ``/v1/messages/count_tokens``).

Run it as a process::

    python -m tests.fakes.anthropic_server --host 127.0.0.1 --port 0 [--api-key KEY]

It prints ``LISTENING <port>`` once it accepts connections. In tests::

    with AnthropicFake(api_key="sk-ant-test") as fake:
        client = anthropic.Anthropic(base_url=fake.url, api_key="sk-ant-test")
        # or a gw provider with base_url: {fake.anthropic_base_url}

What it checks, as Anthropic does: ``x-api-key`` (or ``authorization: Bearer``,
as the anthropic SDK 2.x sends it; 401 ``authentication_error``:
``x-api-key header is required`` / ``invalid x-api-key``), ``anthropic-version``
(400 if absent), then the body: ``model``, ``max_tokens`` (>= 1) and
``messages`` required, roles user/assistant, known block types, non-empty text
blocks, images with a base64 or url source, ``tool_use`` only from the
assistant with an object ``input``, every ``tool_use`` answered by a
``tool_result`` at the start of the next user turn (and no ``tool_result``
without its ``tool_use``), ``temperature`` and ``top_p`` in 0..1, tools with
an object ``input_schema``, a known ``tool_choice``, and no unknown top-level
field ("Extra inputs are not permitted"): each a 400 ``invalid_request_error``.
Every answer has a ``request-id`` header; errors are
``{"type": "error", "error": {"type", "message"}, "request_id"}``.

Answers: ``fake: <the text of the last user turn>`` (for a turn of tool
results only, ``fake: <tool_use_id>=<content>`` for each), word by word when
streamed, at most ``max_tokens`` words (``stop_reason: max_tokens``), cut
before the first of ``stop_sequences`` it holds (``stop_sequence``). Usage:
``input_tokens`` = the words of the system prompt and every text block and
tool result, ``output_tokens`` = the answer's words + one per tool call.
Streams are ``event: <type>\\ndata: {json}\\n\\n`` events in the documented
order: ``message_start``, then per block ``content_block_start`` (a ``ping``
after the first), its deltas, ``content_block_stop``, then ``message_delta``
and ``message_stop``.

Steering: when the last user turn's text starts with ``FAKE {json}``, the fake
follows that object; the text after it is the prompt. Without any (and without
``content``), the answer is ``fake: ok``, or only the tool calls when
``tool_calls`` is given.

``status``, ``message``   answer that status with Anthropic's error body (its
                          type by status: 529 ``overloaded_error``, 413
                          ``request_too_large``, ...; a 429 has ``retry-after``)
``content``, ``chunks``   explicit answer text / N words ``w0 w1 ...``
``tool_calls``            ``[{"name", "arguments"?: obj, "id"?}]``: tool_use blocks
                          after any text; streamed as ``input_json_delta`` ""
                          then the JSON in two halves (no arguments: only "")
``no_json_delta``         stream tool calls without any ``input_json_delta``
``quote_tools``           a tool round trip in one mode: a last user turn that holds
                          tool results is answered ``fake: <tool_use_id>=<content>``
                          (their texts only when it holds text too), without the
                          ``tool_calls``, which answer the other requests
``thinking``              a thinking block first (with its signature)
``stop_reason``           overrides the stop_reason (e.g. ``refusal``)
``cache_read``, ``cache_write``   cache_read_input_tokens / cache_creation_input_tokens
``fault``                 reset_before_headers | close_before_headers | hang |
                          reset_mid_stream | stall_mid_stream | garbage_mid_stream |
                          error_event | truncate: mid-stream ones act before the
                          delta number ``after`` (default 2), or before
                          message_delta when there are fewer deltas; with
                          ``at_start``, right after message_start.
                          ``error_event``: ``event: error`` with
                          ``{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}``
``split``                 "bytes" (one byte per write) | "random" (1..7 bytes, ``seed``)
``delay_s``, ``chunk_delay_s``

``retry_after``           the ``retry-after`` header of a 429 (default "7")

``POST /v1/messages/count_tokens`` (also ``?beta=true``) takes a Messages
body without ``max_tokens``, ``stream``, ``temperature``, ``stop_sequences``
and the like (each "Extra inputs are not permitted"), checked as above, and
answers ``{"input_tokens": N}``: the words ``usage.input_tokens`` counts,
plus the words of each tool's name and description. A ``FAKE {...}``
directive's ``status``, ``delay_s`` and faults before the headers apply.

``GET /v1/models`` lists models in Anthropic's shape (``{"data": [{"type":
"model", "id", "display_name", "created_at"}], "has_more", "first_id",
"last_id"}``; ``limit``, ``after_id``, ``before_id``), ``GET /v1/models/{id}``
one; both need the key and ``anthropic-version`` as ``/v1/messages`` does.

Admin routes as in the OpenAI fake: ``GET /_fake/requests``, ``/_fake/stats``,
``POST /_fake/reset``, and the process-wide mode ``GET``/``POST /_fake/mode``
(a directive for every request without its own, ``times`` N or until
changed; also on the models routes: see ``tests.fakes.openai_server``).
"""

from __future__ import annotations

import asyncio
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


class AnthropicFake(FakeUpstream):
    """The Anthropic fake as a process: ``with AnthropicFake(api_key=K) as fake: fake.anthropic_base_url``."""

    module = "tests.fakes.anthropic_server"

    @property
    def anthropic_base_url(self) -> str:
        return self.url + "/v1"


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
DEFAULT_MESSAGES = {
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "The requested resource could not be found.",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "Number of request tokens has exceeded your per-minute rate limit "
    "(https://docs.claude.com/en/api/rate-limits); see the response headers for current usage. "
    "Please reduce the prompt length or the maximum tokens requested, or try again later.",
    500: "Internal server error",
    529: "Overloaded",
}
MODELS = [
    {"type": "model", "id": "claude-sonnet-4-5-20250929", "display_name": "Claude Sonnet 4.5",
     "created_at": "2025-09-29T00:00:00Z"},
    {"type": "model", "id": "claude-haiku-4-5-20251001", "display_name": "Claude Haiku 4.5",
     "created_at": "2025-10-15T00:00:00Z"},
    {"type": "model", "id": "claude-3-5-haiku-20241022", "display_name": "Claude Haiku 3.5",
     "created_at": "2024-10-22T00:00:00Z"},
]  # newest first, as Anthropic lists them
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}

TOP_LEVEL = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
    "container", "mcp_servers", "context_management", "output_config",
})  # fmt: skip
# What count_tokens takes: a Messages request's input, without the generation settings.
COUNT_TOP_LEVEL = frozenset({
    "model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers",
    "context_management", "output_config", "output_format", "cache_control", "speed",
})  # fmt: skip
BLOCK_TYPES = frozenset({
    "text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
    "search_result", "server_tool_use", "web_search_tool_result",
})  # fmt: skip
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(status: int, message: str | None, request_id: str) -> bytes:
    text = message or DEFAULT_MESSAGES.get(status, f"fake upstream error {status}")
    return orjson.dumps({"type": "error", "error": {"type": error_type(status), "message": text}, "request_id": request_id})


def models_page(query: dict[str, str]) -> bytes | None:
    """``GET /v1/models``: a page after ``after_id`` / before ``before_id``, ``limit`` long (1..1000, default 20)."""
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        return None
    if not 1 <= limit <= 1000:
        return None
    ids = [m["id"] for m in MODELS]
    start, end = 0, len(MODELS)
    backwards = query.get("before_id") in ids
    if query.get("after_id") in ids:
        start = ids.index(query["after_id"]) + 1
    if backwards:
        end = ids.index(query["before_id"])
        start = max(start, end - limit)
    page = MODELS[start:end][:limit]
    return orjson.dumps({
        "data": page,
        "has_more": start > 0 if backwards else start + len(page) < end,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    })


def sse(name: str, obj: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


# ---------------------------------------------------------------- checking a request


class Invalid(ValueError):
    """A 400 ``invalid_request_error`` with this message."""


def _check_blocks(i: int, role: str, content: Any, prev_tool_ids: set[str]) -> list[str]:
    """Check one message's content; the ids of its tool_use blocks."""
    if isinstance(content, str):
        if not content and role == "user":
            raise Invalid(f"messages.{i}: all messages must have non-empty content except for the optional final assistant message")
        content = [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise Invalid(f"messages.{i}.content: Input should be a valid list")
    if not content and role == "user":
        raise Invalid(f"messages.{i}: all messages must have non-empty content except for the optional final assistant message")
    uses: list[str] = []
    results: list[str] = []
    seen_other = False
    for j, block in enumerate(content):
        where = f"messages.{i}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            raise Invalid(f"{where}: Input tag {kind!r} found using 'type' does not match any of the expected tags")
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise Invalid(f"{where}.text: Field required")
            if not block["text"]:
                raise Invalid("messages: text content blocks must be non-empty")
        elif kind == "image":
            source = block.get("source")
            stype = source.get("type") if isinstance(source, dict) else None
            if stype == "base64":
                if source.get("media_type") not in IMAGE_TYPES:
                    raise Invalid(f"{where}.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'")
                if not isinstance(source.get("data"), str) or not source["data"]:
                    raise Invalid(f"{where}.source.base64.data: Field required")
            elif stype == "url":
                if not isinstance(source.get("url"), str):
                    raise Invalid(f"{where}.source.url.url: Field required")
            else:
                raise Invalid(f"{where}.source: Input tag {stype!r} found using 'type' does not match any of the expected tags")
        elif kind == "tool_use":
            if role != "assistant":
                raise Invalid(f"{where}: tool_use blocks are only allowed in assistant messages")
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise Invalid(f"{where}: tool_use blocks need an 'id' and a 'name'")
            if not isinstance(block.get("input"), dict):
                raise Invalid(f"{where}.tool_use.input: Input should be a valid dictionary")
            uses.append(block["id"])
        elif kind == "tool_result":
            if role != "user":
                raise Invalid(f"{where}: tool_result blocks are only allowed in user messages")
            if seen_other:
                raise Invalid(f"messages.{i}: tool_result blocks must come first in the user message, before any other content")
            tid = block.get("tool_use_id")
            if tid not in prev_tool_ids:
                raise Invalid(
                    f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {tid}. Each `tool_result` "
                    "block must have a corresponding `tool_use` block in the previous message."
                )
            results.append(tid)
        if kind != "tool_result":
            seen_other = True
    missing = [t for t in prev_tool_ids if t not in results]
    if role == "user" and prev_tool_ids and missing:
        raise Invalid(
            f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
            f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block in the next message."
        )
    return uses


# Betas (``anthropic-beta``) that let a request carry more: Claude Code's.
SYSTEM_TURNS_BETA = "per-turn-control-2026-07-01"  # a "system" role inside messages
DEFER_LOADING_BETA = "advanced-tool-use-2025-11-20"  # tools' defer_loading


def betas(headers: dict) -> frozenset[str]:
    return frozenset(b.strip() for b in headers.get("anthropic-beta", "").split(",") if b.strip())


def check_request(body: Any, count: bool = False, betas: frozenset[str] = frozenset()) -> None:
    """Raise ``Invalid`` for what Anthropic would refuse with a 400 (``count``: a count_tokens
    body; ``betas``: the request's ``anthropic-beta`` values)."""
    if not isinstance(body, dict):
        raise Invalid("There was an error parsing the body of your request")
    for key in body:
        if key not in (COUNT_TOP_LEVEL if count else TOP_LEVEL):
            raise Invalid(f"{key}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise Invalid("model: Field required")
    max_tokens = body.get("max_tokens")
    if max_tokens is None and not count:
        raise Invalid("max_tokens: Field required")
    if not count and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise Invalid("max_tokens: Input should be greater than or equal to 1")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise Invalid("messages: Field required")
    if not messages:
        raise Invalid("messages: at least one message is required")
    prev_tool_ids: set[str] = set()
    roles = ("user", "assistant", "system") if SYSTEM_TURNS_BETA in betas else ("user", "assistant")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in roles:
            raise Invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if m["role"] == "system":
            continue
        uses = _check_blocks(i, m["role"], m.get("content"), prev_tool_ids if m["role"] == "user" else set())
        if m["role"] == "assistant":
            prev_tool_ids = set(uses)
        else:
            prev_tool_ids = set()
    if prev_tool_ids:
        raise Invalid(
            f"messages.{len(messages) - 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
            f"{', '.join(sorted(prev_tool_ids))}. Each `tool_use` block must have a corresponding `tool_result` block in the next message."
        )
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        if not isinstance(system, list) or not all(
            isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str) and b["text"] for b in system
        ):
            raise Invalid("system: Input should be a valid string or a list of non-empty text blocks")
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1):
            raise Invalid(f"{name}: Input should be less than or equal to 1" if isinstance(value, (int, float)) and value > 1
                          else f"{name}: Input should be a valid number between 0 and 1")
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise Invalid("stop_sequences: Input should be a valid list of strings")
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or set(metadata) - {"user_id"}):
        raise Invalid("metadata: Extra inputs are not permitted")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise Invalid("tools: Input should be a valid list")
        for k, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise Invalid(f"tools.{k}.custom.name: Field required")
            schema = tool.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise Invalid(f"tools.{k}.custom.input_schema.type: Input should be 'object'")
            known = {"name", "description", "input_schema", "type", "cache_control"}
            if DEFER_LOADING_BETA in betas:
                known.add("defer_loading")
            if set(tool) - known:
                extra = sorted(set(tool) - known)[0]
                raise Invalid(f"tools.{k}.custom.{extra}: Extra inputs are not permitted")
    choice = body.get("tool_choice")
    if choice is not None:
        kind = choice.get("type") if isinstance(choice, dict) else None
        if kind not in ("auto", "any", "tool", "none"):
            raise Invalid("tool_choice: Input tag found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'")
        if kind == "tool" and not isinstance(choice.get("name"), str):
            raise Invalid("tool_choice.tool.name: Field required")
        if "disable_parallel_tool_use" in choice and (kind == "none" or not isinstance(choice["disable_parallel_tool_use"], bool)):
            raise Invalid(f"tool_choice.{kind}.disable_parallel_tool_use: Extra inputs are not permitted")
        if not tools:
            raise Invalid("tool_choice: may only be specified while providing tools")


# ---------------------------------------------------------------- reading a request


def block_texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [b["text"] for b in content or () if isinstance(b, dict) and b.get("type") == "text"]


def result_text(block: dict) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return " ".join(block_texts(content))
    return content if isinstance(content, str) else ""


def last_user_text(messages: list) -> str:
    """The text of the last user turn; for tool results only, ``id=content`` each."""
    for m in reversed(messages):
        if m.get("role") != "user":
            continue
        texts = block_texts(m.get("content"))
        if texts:
            return " ".join(texts)
        return " ".join(
            f"{b.get('tool_use_id')}={result_text(b)}"
            for b in m.get("content") or ()
            if isinstance(b, dict) and b.get("type") == "tool_result"
        )
    return ""


def _ends_with_tool_results(messages: list) -> bool:
    last = messages[-1] if messages else None
    content = last.get("content") if isinstance(last, dict) and last.get("role") == "user" else None
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def count_input_words(body: dict) -> int:
    words = 0
    system = body.get("system")
    for text in block_texts(system) if system is not None else ():
        words += len(text.split())
    for m in body["messages"]:
        content = m.get("content")
        for text in block_texts(content):
            words += len(text.split())
        if isinstance(content, list):
            for b in content:
                if isinstance(b, dict) and b.get("type") == "tool_result":
                    words += len(result_text(b).split())
    return words


def count_tokens(body: dict) -> int:
    """count_tokens' answer: the input words as usage counts them, and each tool's name and description."""
    words = count_input_words(body)
    for tool in body.get("tools") or ():
        for field in ("name", "description"):
            if isinstance(tool.get(field), str):
                words += len(tool[field].split())
    return words


def _words(text: str) -> list[str]:
    words = WORD_RE.findall(text)
    lead = text[: len(text) - len(text.lstrip())]
    if lead:
        words = [lead + words[0], *words[1:]] if words else [lead]
    return words


class Answer:
    """What one request answers, as Anthropic message content and events."""

    def __init__(self, body: dict, message_id: str, fake: dict, prompt: str) -> None:
        self.id = message_id
        self.model = body["model"]
        self.fake = fake
        if fake.get("chunks") is not None:
            words = [f"w{i} " for i in range(int(fake["chunks"]))]
            if words:
                words[-1] = words[-1].rstrip()
        elif isinstance(fake.get("content"), str):
            words = _words(fake["content"])
        elif fake.get("quote_tools") and _ends_with_tool_results(body["messages"]):
            words = _words("fake: " + prompt)
        elif prompt or not fake.get("tool_calls"):
            words = _words("fake: " + (prompt or "ok"))
        else:
            words = []
        self.stop_reason = "end_turn"
        self.stop_sequence: str | None = None
        text = "".join(words)
        for stop in body.get("stop_sequences") or ():
            at = text.find(stop) if stop else -1
            if at >= 0:
                words = _words(text[:at])
                self.stop_reason, self.stop_sequence = "stop_sequence", stop
                break
        limit = body["max_tokens"]
        if len(words) > limit:
            words = words[:limit]
            words[-1] = words[-1].rstrip()
            self.stop_reason, self.stop_sequence = "max_tokens", None
        self.words = words
        self.calls: list[dict] = []
        quoted = fake.get("quote_tools") and _ends_with_tool_results(body["messages"])
        for i, call in enumerate(() if quoted else fake.get("tool_calls") or ()):
            self.calls.append({
                "type": "tool_use",
                "id": call.get("id") or f"toolu_01{message_id[-16:]}{i:06d}",
                "name": call["name"],
                "input": call.get("arguments") or {},
            })
        if self.calls and self.stop_reason == "end_turn":
            self.stop_reason = "tool_use"
        if isinstance(fake.get("stop_reason"), str):
            self.stop_reason = fake["stop_reason"]
        self.thinking = fake.get("thinking") if isinstance(fake.get("thinking"), str) else None
        self.input_tokens = count_input_words(body)
        self.cache_read = int(fake.get("cache_read") or 0)
        self.cache_write = int(fake.get("cache_write") or 0)
        self.output_tokens = len(words) + len(self.calls) + (len(self.thinking.split()) if self.thinking else 0)

    def usage(self, output_tokens: int) -> dict:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_write,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation": {"ephemeral_5m_input_tokens": self.cache_write, "ephemeral_1h_input_tokens": 0},
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def content(self) -> list[dict]:
        blocks: list[dict] = []
        if self.thinking:
            blocks.append({"type": "thinking", "thinking": self.thinking, "signature": "c2lnbmF0dXJl"})
        if self.words:
            blocks.append({"type": "text", "text": "".join(self.words)})
        blocks.extend(self.calls)
        return blocks

    def message(self) -> dict:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": self.content(),
            "stop_reason": self.stop_reason,
            "stop_sequence": self.stop_sequence,
            "usage": self.usage(self.output_tokens),
        }

    def events(self) -> list[tuple[str, dict]]:
        """The stream's events, in Anthropic's order."""
        start = {**self.message(), "content": [], "stop_reason": None, "stop_sequence": None, "usage": self.usage(1)}
        events: list[tuple[str, dict]] = [("message_start", {"type": "message_start", "message": start})]
        index = 0

        def block(first: dict, deltas: list[dict]) -> None:
            nonlocal index
            events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": first}))
            if index == 0:
                events.append(("ping", {"type": "ping"}))
            for delta in deltas:
                events.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1

        if self.thinking:
            block(
                {"type": "thinking", "thinking": "", "signature": ""},
                [{"type": "thinking_delta", "thinking": self.thinking},
                 {"type": "signature_delta", "signature": "c2lnbmF0dXJl"}],
            )
        if self.words:
            block({"type": "text", "text": ""}, [{"type": "text_delta", "text": w} for w in self.words])
        for call in self.calls:
            args = orjson.dumps(call["input"]).decode() if call["input"] else ""
            # Anthropic opens with an empty fragment, also for a tool without arguments.
            half = len(args) // 2
            pieces = [] if self.fake.get("no_json_delta") else ["", *(p for p in (args[:half], args[half:]) if p)]
            block(
                {"type": "tool_use", "id": call["id"], "name": call["name"], "input": {}},
                [{"type": "input_json_delta", "partial_json": p} for p in pieces],
            )
        if index == 0:
            events.append(("ping", {"type": "ping"}))
        events.append((
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence},
             "usage": {"output_tokens": self.output_tokens}},
        ))
        events.append(("message_stop", {"type": "message_stop"}))
        return events


# ---------------------------------------------------------------- protocol


class AnthropicProtocol(FakeProtocol):
    def stream_head(self, rid: str) -> bytes:
        headers = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("transfer-encoding", "chunked"),
            ("cache-control", "no-cache"),
            ("request-id", rid),
        ]
        if not self.keep_alive:
            headers.append(("connection", "close"))
        return head_bytes(200, headers)

    def reply(self, status: int, body: bytes, rid: str, retry_after: str | None = None) -> None:
        extra = [("request-id", rid)]
        if status == 429:
            extra.append(("retry-after", retry_after or "7"))
        if status == 529:
            extra.append(("x-should-retry", "true"))
        self.send(status, body, "", extra)

    def fail_with(self, status: int, message: str | None, rid: str) -> None:
        self.reply(status, error_body(status, message, rid), rid)

    def status_reply(self, status: int, fake: dict, rid: str) -> None:
        self.reply(status, error_body(status, fake.get("message"), rid), rid, fake.get("retry_after"))

    def dispatch(self, method: str, target: str, headers: dict, raw: bytes) -> None:
        path, _, qs = target.partition("?")
        state = self.state
        if path.startswith("/_fake/"):
            if not self.admin(method, path, raw):
                self.send(404, error_body(404, None, ""), "")
            return

        query = dict(parse_qsl(qs, keep_blank_values=True)) if qs else {}
        body = self.record(method, path, query, headers, raw)
        rid, cid = state.next_ids()
        message_id = "msg_01" + cid[-22:]

        if state.api_key is not None:
            # Anthropic takes the key as x-api-key, and (SDK 2.x) as a bearer token.
            key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
            if not key:
                self.fail_with(401, "x-api-key header is required", rid)
                return
            if key != state.api_key:
                self.fail_with(401, "invalid x-api-key", rid)
                return
        models = method == "GET" and (path == "/v1/models" or path.startswith("/v1/models/"))
        counting = method == "POST" and path == "/v1/messages/count_tokens"
        if not (method == "POST" and path == "/v1/messages" or models or counting):
            self.fail_with(404, f"Not Found: {method} {path}", rid)
            return
        if not headers.get("anthropic-version"):
            self.fail_with(400, "anthropic-version: header is required", rid)
            return
        if models:
            self.models(path, query, rid)
            return
        if counting:
            self.count(body, rid)
            return
        try:
            check_request(body, betas=betas(headers))
            fake, prompt = directive(last_user_text(body["messages"]))
        except (Invalid, ValueError) as exc:
            self.fail_with(400, str(exc), rid)
            return
        if fake is None:
            fake = state.take_mode()
        answer = Answer(body, message_id, fake or {}, prompt)
        streaming = body.get("stream") is True
        if fake:
            self.start(self.run_fake(fake, answer, streaming, rid))
        elif streaming:
            self.stream_sync(answer, rid)
        else:
            self.reply(200, orjson.dumps(answer.message()), rid)

    def models(self, path: str, query: dict[str, str], rid: str) -> None:
        if path == "/v1/models":
            page = models_page(query)
            if page is None:
                self.fail_with(400, "limit: Input should be between 1 and 1000", rid)
                return
            self.answer(self.state.take_mode(), lambda: self.reply(200, page, rid), rid)
            return
        model_id = path[len("/v1/models/") :]
        found = [m for m in MODELS if m["id"] == model_id]
        if not found:
            self.fail_with(404, f"model: {model_id}", rid)
            return
        one = orjson.dumps(found[0])
        self.answer(self.state.take_mode(), lambda: self.reply(200, one, rid), rid)

    def count(self, body: Any, rid: str) -> None:
        try:
            check_request(body, count=True)
            fake, _ = directive(last_user_text(body["messages"]))
        except (Invalid, ValueError) as exc:
            self.fail_with(400, str(exc), rid)
            return
        answer = orjson.dumps({"input_tokens": count_tokens(body)})
        self.answer(fake or self.state.take_mode(), lambda: self.reply(200, answer, rid), rid)

    # -- fast stream (no directive): every event its own write, no awaits

    def stream_sync(self, answer: Answer, rid: str) -> None:
        st = self.state.stats
        w = self.transport.write
        w(self.stream_head(rid))
        st["streams_started"] += 1
        for name, obj in answer.events():
            w(http_chunk(sse(name, obj)))
        w(b"0\r\n\r\n")
        st["streams_completed"] += 1

    # -- directed answers

    async def run_fake(self, fake: dict, answer: Answer, streaming: bool, rid: str) -> None:
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
                self.fail_with(400, f"unknown fake fault {fault!r}", rid)
                return
            if streaming:
                await self.stream_async(answer, fake, fault, rid)
            else:
                await self.whole_async(orjson.dumps(answer.message()), fault, rid)
        except asyncio.CancelledError:
            self.count_disconnect()

    async def whole_async(self, body: bytes, fault: str | None, rid: str) -> None:
        if fault is None:
            self.reply(200, body, rid)
            return
        if fault == "garbage_mid_stream":
            self.reply(200, b"{not json", rid)
            return
        if fault == "error_event":
            self.reply(200, orjson.dumps(OVERLOADED), rid)
            return
        head = head_bytes(200, [("content-type", "application/json"), ("content-length", str(len(body))), ("request-id", rid)])
        await self.cut_body(head, body, fault)

    async def stream_async(self, answer: Answer, fake: dict, fault: str | None, rid: str) -> None:
        out = Writer(self.transport, fake)
        after = int(fake.get("after", 2)) if fault else -1
        at_start = bool(fake.get("at_start"))
        st = self.state.stats
        self.transport.write(self.stream_head(rid))
        st["streams_started"] += 1
        events = answer.events()
        deltas = 0
        at = len(events)
        for i, (name, obj) in enumerate(events):
            if fault and (
                at_start and i == 1 or name == "content_block_delta" and deltas == after or name == "message_delta"
            ):
                at = i
                break
            if i:
                await out.pause()
            await out.send(sse(name, obj))
            deltas += name == "content_block_delta"
        if await self.break_stream(out, fault):
            return
        if fault == "error_event":
            await out.send(sse("error", OVERLOADED))
        elif fault == "garbage_mid_stream":
            await out.send(b"event: content_block_delta\ndata: {not json\n\n")
            for name, obj in events[at:]:
                await out.send(sse(name, obj))
        await out.end()
        st["streams_completed"] += 1


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    run(AnthropicProtocol, "fake Anthropic Messages upstream", argv)


if __name__ == "__main__":
    main()
