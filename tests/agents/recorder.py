"""A recording fake of both agent backends: what do Claude Code and Codex send?

Point a CLI straight at it (no gw) and every request is logged, one JSON object
a line (method, path, query, headers with secrets redacted, JSON body), and
answered plausibly::

    python -m tests.agents.recorder --port 0 --log /tmp/rec.jsonl [--tool-command "echo gw-tool-ok"]

It prints ``LISTENING <port>`` once it accepts connections. Claude Code:
``ANTHROPIC_BASE_URL=http://127.0.0.1:<port>``; Codex: a provider whose
``base_url`` is ``http://127.0.0.1:<port>/v1``.

Routes:

``POST /v1/messages``               Anthropic Messages: SSE when ``stream`` is true
                                    (message_start, content_block_start, ping,
                                    deltas, content_block_stop, message_delta,
                                    message_stop), else the whole message
``POST /v1/messages/count_tokens``  ``{"input_tokens": 10}``
``POST /v1/responses``              OpenAI Responses: SSE (response.created ...
                                    response.completed, each with sequence_number),
                                    or the whole Response when not streamed
``GET  /v1/models``                 a list in OpenAI's shape plus Anthropic's keys
``GET  /_rec/requests``             what was recorded so far (JSON list)
anything else                       404 (recorded too)

With ``--fail STATUS`` every POST is answered with that status and an error
body (to see how a CLI retries and fails).

The answer text is ``recorded: <last user text>``. With ``--tool-command CMD``
it scripts a tool round trip: a request that offers a shell-like tool and
carries no tool result yet is answered with a call of that tool running CMD
(Claude Code: ``tool_use`` of ``Bash`` ``{"command": CMD}``; Codex: a
``function_call`` of its shell tool, its arguments shaped by the tool's
parameter schema: ``command`` array / ``command`` string / ``cmd`` string, or
a ``custom_tool_call`` for a freeform tool); the request carrying the result is
answered ``tool said: <result text>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SECRET_HEADERS = {"authorization", "x-api-key", "cookie", "proxy-authorization", "openai-api-key"}
SHELL_TOOL_NAMES = ("Bash", "shell", "exec_command", "shell_command", "local_shell", "container.exec")


def redact(headers: dict[str, str]) -> dict[str, str]:
    out = {}
    for name, value in headers.items():
        low = name.lower()
        if low in SECRET_HEADERS:
            out[low] = f"<redacted {len(value)} chars, starts {value[:10]!r}>"
        else:
            out[low] = value
    return out


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif kind == "tool_result":
                parts.append(text_of(part.get("content")))
        return "\n".join(parts)
    return ""


# -- Anthropic


def anthropic_tool_result(body: dict[str, Any]) -> str | None:
    """The text of the tool results in the last user turn, if it holds any."""
    messages = body.get("messages") or []
    if not messages or messages[-1].get("role") != "user":
        return None
    content = messages[-1].get("content")
    if not isinstance(content, list):
        return None
    results = [text_of(p.get("content")) for p in content if isinstance(p, dict) and p.get("type") == "tool_result"]
    return "\n".join(results) if results else None


def anthropic_last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            return text_of(message.get("content"))
    return ""


def anthropic_blocks(body: dict[str, Any], tool_command: str | None) -> tuple[list[dict[str, Any]], str]:
    tools = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
    result = anthropic_tool_result(body)
    if result is not None:
        return [{"type": "text", "text": f"tool said: {result.strip()}"}], "end_turn"
    if tool_command and "Bash" in tools:
        block = {
            "type": "tool_use",
            "id": "toolu_" + uuid.uuid4().hex[:24],
            "name": "Bash",
            "input": {"command": tool_command, "description": "Run the scripted command"},
        }
        return [block], "tool_use"
    last = anthropic_last_user_text(body).strip().splitlines()
    return [{"type": "text", "text": f"recorded: {last[-1] if last else ''}"}], "end_turn"


def anthropic_message(body: dict[str, Any], blocks: list[dict[str, Any]], stop: str) -> dict[str, Any]:
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "unknown"),
        "content": blocks,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }


def anthropic_events(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    start = dict(message, content=[], stop_reason=None, usage=dict(message["usage"], output_tokens=1))
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}))
            if index == 0:
                events.append(("ping", {"type": "ping"}))
            words = block["text"].split(" ")
            for i, word in enumerate(words):
                piece = word if i == 0 else " " + word
                events.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}))
        else:  # tool_use
            events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": dict(block, input={})}))
            raw = json.dumps(block["input"])
            half = len(raw) // 2
            for piece in ("", raw[:half], raw[half:]):
                events.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None}, "usage": {"output_tokens": message["usage"]["output_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


# -- OpenAI Responses


def responses_tool_result(body: dict[str, Any]) -> str | None:
    items = body.get("input")
    if not isinstance(items, list):
        return None
    # the results after the last user message
    results: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message" and item.get("role") == "user" or item.get("role") == "user":
            results = []
        elif item.get("type") in ("function_call_output", "custom_tool_call_output", "local_shell_call_output"):
            output = item.get("output")
            if isinstance(output, dict):  # {"content": ..., "success": ...}
                output = output.get("content") or output.get("body") or json.dumps(output)
            elif isinstance(output, list):
                output = text_of(output)
            results.append(str(output))
    return "\n".join(results) if results else None


def responses_last_user_text(body: dict[str, Any]) -> str:
    items = body.get("input")
    if isinstance(items, str):
        return items
    for item in reversed(items or []):
        if isinstance(item, dict) and item.get("role") == "user":
            return text_of(item.get("content"))
    return ""


def offered_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tools of ``tools`` and of ``additional_tools`` input items, namespaces flattened
    (each tool of a namespace gets ``_namespace``)."""
    found: list[dict[str, Any]] = []

    def walk(tools: Any, namespace: str | None) -> None:
        for tool in tools or []:
            if not isinstance(tool, dict):
                continue
            if tool.get("type") == "namespace":
                walk(tool.get("tools"), tool.get("name"))
            else:
                found.append(dict(tool, _namespace=namespace) if namespace else tool)

    walk(body.get("tools"), None)
    for item in body.get("input") or []:
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            walk(item.get("tools"), None)
    return found


def code_mode_source(command: str) -> str:
    """JavaScript for Codex's code-mode ``exec`` tool: run the command through its nested exec_command."""
    return f"const r = await tools.exec_command({{cmd: {json.dumps(command)}}});\ntext(r.output);\n"


def shell_call(tools: list[Any], command: str) -> dict[str, Any] | None:
    """A call of the first shell-like tool offered, its arguments shaped by the tool's schema."""
    by_name = {}
    for tool in tools:
        if isinstance(tool, dict):
            by_name[tool.get("name") or tool.get("type")] = tool
    code_mode = by_name.get("exec")
    if code_mode is not None and code_mode.get("type") == "custom" and "tools.exec_command" in (code_mode.get("description") or ""):
        call = {"type": "custom_tool_call", "id": "ctc_" + uuid.uuid4().hex[:24], "call_id": "call_" + uuid.uuid4().hex[:24],
                "name": "exec", "input": code_mode_source(command), "status": "completed"}
        if code_mode.get("_namespace"):
            call["namespace"] = code_mode["_namespace"]
        return call
    for name in SHELL_TOOL_NAMES:
        tool = by_name.get(name)
        if tool is None:
            continue
        call_id = "call_" + uuid.uuid4().hex[:24]
        if tool.get("type") == "custom":
            return {"type": "custom_tool_call", "id": "ctc_" + uuid.uuid4().hex[:24], "call_id": call_id, "name": name, "input": command, "status": "completed"}
        if tool.get("type") == "local_shell":
            return {"type": "local_shell_call", "id": "lsh_" + uuid.uuid4().hex[:24], "call_id": call_id, "status": "completed",
                    "action": {"type": "exec", "command": ["bash", "-lc", command], "env": {}}}
        props = (tool.get("parameters") or {}).get("properties") or {}
        if "cmd" in props:
            args: dict[str, Any] = {"cmd": command}
        elif props.get("command", {}).get("type") == "array":
            args = {"command": ["bash", "-lc", command]}
        else:
            args = {"command": command}
        return {"type": "function_call", "id": "fc_" + uuid.uuid4().hex[:24], "call_id": call_id, "name": name,
                "arguments": json.dumps(args), "status": "completed"}
    return None


def responses_output(body: dict[str, Any], tool_command: str | None) -> list[dict[str, Any]]:
    result = responses_tool_result(body)
    if result is None and tool_command:
        call = shell_call(offered_tools(body), tool_command)
        if call is not None:
            return [call]
    if result is not None:
        text = f"tool said: {result.strip()}"
    else:
        last = responses_last_user_text(body).strip().splitlines()
        text = f"recorded: {last[-1] if last else ''}"
    return [{"type": "message", "id": "msg_" + uuid.uuid4().hex[:24], "status": "completed", "role": "assistant",
             "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}]


def response_object(body: dict[str, Any], output: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {
        "id": "resp_" + uuid.uuid4().hex[:24], "object": "response", "created_at": int(time.time()),
        "status": status, "error": None, "incomplete_details": None, "instructions": None,
        "model": body.get("model", "unknown"), "output": output, "parallel_tool_calls": True,
        "tool_choice": body.get("tool_choice", "auto"), "tools": [], "store": bool(body.get("store", False)),
        "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15} if status == "completed" else None,
    }


def responses_events(body: dict[str, Any], output: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    final = response_object(body, output, "completed")
    pending = dict(final, status="in_progress", output=[], usage=None)
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"type": "response.created", "response": pending}),
        ("response.in_progress", {"type": "response.in_progress", "response": pending}),
    ]
    for index, item in enumerate(output):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            events.append(("response.output_item.added", {"type": "response.output_item.added", "output_index": index,
                                                          "item": dict(item, status="in_progress", content=[])}))
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            common = {"item_id": item["id"], "output_index": index, "content_index": 0}
            events.append(("response.content_part.added", {"type": "response.content_part.added", **common, "part": part}))
            for i, word in enumerate(text.split(" ")):
                events.append(("response.output_text.delta", {"type": "response.output_text.delta", **common,
                                                              "delta": word if i == 0 else " " + word, "logprobs": []}))
            events.append(("response.output_text.done", {"type": "response.output_text.done", **common, "text": text, "logprobs": []}))
            events.append(("response.content_part.done", {"type": "response.content_part.done", **common, "part": dict(part, text=text)}))
        else:
            added = dict(item, status="in_progress")
            if item["type"] == "function_call":
                added["arguments"] = ""
            if item["type"] == "custom_tool_call":
                added["input"] = ""
            events.append(("response.output_item.added", {"type": "response.output_item.added", "output_index": index, "item": added}))
            if item["type"] == "function_call":
                events.append(("response.function_call_arguments.delta", {"type": "response.function_call_arguments.delta",
                                                                          "item_id": item["id"], "output_index": index, "delta": item["arguments"]}))
                events.append(("response.function_call_arguments.done", {"type": "response.function_call_arguments.done",
                                                                         "item_id": item["id"], "output_index": index, "arguments": item["arguments"]}))
            if item["type"] == "custom_tool_call":
                events.append(("response.custom_tool_call_input.delta", {"type": "response.custom_tool_call_input.delta",
                                                                         "item_id": item["id"], "output_index": index, "delta": item["input"]}))
                events.append(("response.custom_tool_call_input.done", {"type": "response.custom_tool_call_input.done",
                                                                        "item_id": item["id"], "output_index": index, "input": item["input"]}))
        events.append(("response.output_item.done", {"type": "response.output_item.done", "output_index": index, "item": item}))
    events.append(("response.completed", {"type": "response.completed", "response": final}))
    for number, (_, data) in enumerate(events):
        data["sequence_number"] = number
    return events


# -- the server


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], log_path: str | None, tool_command: str | None, fail: int | None = None) -> None:
        super().__init__(address, Handler)
        self.fail = fail
        self.log_path = log_path
        self.tool_command = tool_command
        self.recorded: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            entry["n"] = len(self.recorded)
            self.recorded.append(entry)
            if self.log_path:
                with open(self.log_path, "a") as f:
                    f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Recorder

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write("recorder: " + (format % args) + "\n")

    def do_GET(self) -> None:
        self.handle_any("GET")

    def do_POST(self) -> None:
        self.handle_any("POST")

    def do_HEAD(self) -> None:
        self.handle_any("HEAD")

    def do_DELETE(self) -> None:
        self.handle_any("DELETE")

    def send_json(self, status: int, obj: Any) -> None:
        raw = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:16])
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex[:16])
        self.end_headers()
        self.wfile.write(raw)

    def send_sse(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:16])
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex[:16])
        self.send_header("connection", "close")
        self.end_headers()
        for name, data in events:
            self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()
        self.close_connection = True

    def handle_any(self, method: str) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"_raw": raw[:2000].decode(errors="replace")}
        path = split.path
        if path == "/_rec/requests":
            self.send_json(200, self.server.recorded)
            return
        entry: dict[str, Any] = {"t": round(time.time(), 3), "method": method, "path": path,
                                 "query": dict(parse_qsl(split.query)), "headers": redact(dict(self.headers.items())),
                                 "body": body}
        self.server.record(entry)
        tool_command = self.server.tool_command
        if self.server.fail and method == "POST":
            kind = {404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}.get(self.server.fail, "api_error")
            self.send_json(self.server.fail, {"type": "error", "error": {"type": kind, "message": f"recorder fails with {self.server.fail}",
                                                                          "code": kind}})
        elif method == "POST" and path == "/v1/messages/count_tokens":
            self.send_json(200, {"input_tokens": 10})
        elif method == "POST" and path == "/v1/messages" and isinstance(body, dict):
            blocks, stop = anthropic_blocks(body, tool_command)
            message = anthropic_message(body, blocks, stop)
            entry_answer = {"stop_reason": stop, "content": blocks}
            self.server.record({"answer_to": entry["n"], **entry_answer})
            if body.get("stream"):
                self.send_sse(anthropic_events(message))
            else:
                self.send_json(200, message)
        elif method == "POST" and path == "/v1/responses" and isinstance(body, dict):
            output = responses_output(body, tool_command)
            self.server.record({"answer_to": entry["n"], "output": output})
            if body.get("stream"):
                self.send_sse(responses_events(body, output))
            else:
                self.send_json(200, response_object(body, output, "completed"))
        elif method == "GET" and path in ("/v1/models", "/models"):
            ids = ["claude-sonnet-4-5", "claude-haiku-4-5", "gpt-5", "gpt-5-codex"]
            data = [{"id": i, "object": "model", "type": "model", "display_name": i, "created": 0,
                     "created_at": "2025-01-01T00:00:00Z", "owned_by": "recorder"} for i in ids]
            self.send_json(200, {"object": "list", "data": data, "models": [], "has_more": False,
                                 "first_id": ids[0], "last_id": ids[-1]})
        else:
            self.send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": f"no route {method} {path}"}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", help="append one JSON object a line here")
    parser.add_argument("--tool-command", help="script a tool round trip running this shell command")
    parser.add_argument("--fail", type=int, help="answer every POST with this status and an error body")
    args = parser.parse_args()
    server = Recorder((args.host, args.port), args.log, args.tool_command, args.fail)
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
