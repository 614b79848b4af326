"""The OpenAI fake's Responses API (``POST /v1/responses``; Azure's ``/openai/v1/responses``).

An answer is the fake's chat answer (``Chat``: the same ``fake`` directives,
``FAKE {...}`` in the last user text, ``max_output_tokens``) written as
OpenAI's Responses API writes it: a Response object, or the stream of
``event:`` + ``data:`` events with a rising ``sequence_number``::

    response.created, response.in_progress,
    per item: response.output_item.added -> (content_part.added, output_text.delta...,
      output_text.done, content_part.done) | (function_call_arguments.delta..., .done)
      -> response.output_item.done,
    response.completed | response.incomplete

Mid-stream faults: ``error_event`` (an ``error`` event after ``after`` deltas,
then the end), ``reset_mid_stream``, ``truncate`` (the stream ends without a
final event). Responses are kept by id for ``GET``/``DELETE
/v1/responses/{id}`` and ``POST /v1/responses/{id}/cancel``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson


def input_text(value: Any) -> str:
    """The text of the last user message of a Responses ``input``."""
    if isinstance(value, str):
        return value
    text = ""
    for item in value if isinstance(value, list) else ():
        if not isinstance(item, dict) or item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            text = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return text


def chat_body(body: dict) -> dict:
    """The chat request the fake's ``Chat`` answers for this Responses request."""
    chat: dict[str, Any] = {"messages": [{"role": "user", "content": input_text(body.get("input"))}]}
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    return chat


class ResponsesAnswer:
    """One Responses answer, built from the fake's chat answer ``chat``."""

    def __init__(self, chat: Any, body: dict) -> None:
        self.chat = chat
        self.body = body
        self.id = "resp_" + chat.cid.removeprefix("chatcmpl-")
        self.created_at = int(time.time())
        self.seq = 0

    def items(self) -> list[dict]:
        """The output items, completed."""
        chat = self.chat
        items: list[dict] = []
        if chat.content or not chat.tool_calls:
            items.append({
                "id": "msg_" + self.id[5:], "type": "message", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": chat.content, "annotations": [], "logprobs": []}],
            })  # fmt: skip
        for i, call in enumerate(chat.tool_calls):
            fn = call["function"]
            items.append({
                "id": f"fc_{self.id[5:]}{i}", "type": "function_call", "status": "completed",
                "call_id": call["id"], "name": fn["name"], "arguments": fn["arguments"],
            })  # fmt: skip
        return items

    def usage(self) -> dict:
        u = self.chat.usage
        return {
            "input_tokens": u["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": u["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": u["total_tokens"],
        }

    def response(self, status: str | None = None, output: list | None = None) -> dict:
        body = self.body
        final = status is None
        if status is None:
            status = "incomplete" if self.chat.finish == "length" else "completed"
        return {
            "id": self.id, "object": "response", "created_at": self.created_at, "status": status,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "model": self.chat.model, "output": self.items() if output is None else output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None}, "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0), "text": {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools", []),
            "top_p": body.get("top_p", 1.0), "truncation": "disabled",
            "usage": self.usage() if final else None, "user": None, "metadata": body.get("metadata") or {},
        }  # fmt: skip

    def event(self, type_: str, **fields: Any) -> bytes:
        payload = orjson.dumps({"type": type_, "sequence_number": self.seq, **fields})
        self.seq += 1
        return b"event: " + type_.encode() + b"\ndata: " + payload + b"\n\n"

    def head_events(self) -> list[bytes]:
        return [
            self.event("response.created", response=self.response("in_progress", [])),
            self.event("response.in_progress", response=self.response("in_progress", [])),
        ]

    def item_events(self) -> list[list[bytes]]:
        """Each output item's events, the deltas one per element (faults cut between them)."""
        out: list[list[bytes]] = []
        for index, item in enumerate(self.items()):
            events: list[bytes] = []
            if item["type"] == "message":
                empty = {**item, "status": "in_progress", "content": []}
                events.append(self.event("response.output_item.added", output_index=index, item=empty))
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
                events.append(self.event("response.content_part.added", **ids, part=part))
                for delta in self.chat.chunks:
                    events.append(self.event("response.output_text.delta", **ids, delta=delta, logprobs=[]))
                text = item["content"][0]["text"]
                events.append(self.event("response.output_text.done", **ids, text=text, logprobs=[]))
                events.append(self.event("response.content_part.done", **ids, part={**part, "text": text}))
            else:
                args = item["arguments"]
                started = {**item, "status": "in_progress", "arguments": ""}
                events.append(self.event("response.output_item.added", output_index=index, item=started))
                for delta in (args[: len(args) // 2], args[len(args) // 2 :]):
                    if delta:
                        events.append(self.event(
                            "response.function_call_arguments.delta",
                            item_id=item["id"], output_index=index, delta=delta,
                        ))  # fmt: skip
                events.append(self.event(
                    "response.function_call_arguments.done",
                    item_id=item["id"], output_index=index, arguments=args, name=item["name"],
                ))  # fmt: skip
            events.append(self.event("response.output_item.done", output_index=index, item=item))
            out.append(events)
        return out

    def final_event(self) -> bytes:
        response = self.response()
        return self.event(f"response.{response['status']}", response=response)

    def error_event(self) -> bytes:
        return self.event("error", code="server_error", message="fake mid-stream error", param=None)


def deleted(response_id: str) -> bytes:
    return orjson.dumps({"id": response_id, "object": "response.deleted", "deleted": True})


def input_tokens(body: dict) -> bytes:
    return orjson.dumps({"object": "response.input_tokens", "input_tokens": len(input_text(body.get("input")).split())})


def compacted(body: dict, response_id: str) -> bytes:
    """``POST /v1/responses/compact``: the user messages, then one compaction item."""
    items = body.get("input")
    users = [i for i in items if isinstance(i, dict) and i.get("role") == "user"] if isinstance(items, list) else []
    messages = [
        {"id": f"msg_{response_id[5:]}{n}", "type": "message", "role": "user", "status": "completed",
         "content": [{"type": "input_text", "text": input_text([m])}]}
        for n, m in enumerate(users)
    ]  # fmt: skip
    words = len(input_text(items).split())
    return orjson.dumps({
        "id": response_id, "object": "response.compaction", "created_at": int(time.time()),
        "output": [*messages, {"id": "cmp_" + response_id[5:], "type": "compaction", "encrypted_content": "fake-compacted"}],
        "usage": {
            "input_tokens": words, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 1, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": words + 1,
        },
    })  # fmt: skip
