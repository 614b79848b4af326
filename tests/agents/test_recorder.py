"""The CLIs straight against the recording fake (no gw): the evidence of tests/agents/PROTOCOL.md.

If one of these fails after a version bump in install.sh, the CLI changed what it sends:
record it again (``python -m tests.agents.recorder --log ...``) and update PROTOCOL.md.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.agents.conftest import Runner, explain
from tests.agents.recorder import Recorder

pytestmark = pytest.mark.agents

CLAUDE_DEFAULT_MODEL = "claude-opus-5-5"
CODEX_DEFAULT_MODEL = "gpt-6.2-sol"


class Running:
    def __init__(self, tool_command: str | None) -> None:
        self.server = Recorder(("127.0.0.1", 0), None, tool_command)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def requests(self) -> list[dict[str, Any]]:
        return [entry for entry in self.server.recorded if "method" in entry]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Running]:
    running = Running(None)
    yield running
    running.close()


@pytest.fixture
def tool_recorder() -> Iterator[Running]:
    running = Running("echo gw-tool-ok")
    yield running
    running.close()


def test_claude_plain(claude: Runner, recorder: Running) -> None:
    done = claude(recorder.url, "Say hello to gw-plain-7f3a")
    assert done.returncode == 0, explain(done)
    assert done.stdout.strip() == "recorded: Say hello to gw-plain-7f3a"
    [request] = recorder.requests()
    assert (request["method"], request["path"], request["query"]) == ("POST", "/v1/messages", {"beta": "true"})
    assert request["headers"]["anthropic-version"] == "2023-06-01"
    assert "claude-code-20250219" in request["headers"]["anthropic-beta"]
    assert request["headers"]["x-api-key"].startswith("<redacted")
    body = request["body"]
    assert body["model"] == CLAUDE_DEFAULT_MODEL
    assert body["stream"] is True
    assert {"Bash", "Read", "Edit", "Write"} <= {tool["name"] for tool in body["tools"]}
    # A system turn inside messages (beta per-turn-control): gw must accept it.
    assert [m["role"] for m in body["messages"]] == ["user", "system"]


def test_claude_tool_round_trip(claude: Runner, tool_recorder: Running) -> None:
    done = claude(tool_recorder.url, "Run echo gw-tool-ok and tell me what it printed", "--allowedTools", "Bash")
    assert done.returncode == 0, explain(done)
    assert done.stdout.strip() == "tool said: gw-tool-ok"
    first, second = tool_recorder.requests()
    assert first["body"]["model"] == second["body"]["model"] == CLAUDE_DEFAULT_MODEL
    result = second["body"]["messages"][-1]
    assert result["role"] == "user"
    assert result["content"][0]["type"] == "tool_result"
    assert result["content"][0]["content"] == "gw-tool-ok"


def test_codex_plain(codex: Runner, recorder: Running) -> None:
    done = codex(recorder.url + "/v1", "Say hello to gw-plain-7f3a")
    assert done.returncode == 0, explain(done)
    assert done.stdout.strip() == "recorded: Say hello to gw-plain-7f3a"
    [request] = recorder.requests()
    assert (request["method"], request["path"]) == ("POST", "/v1/responses")
    assert request["headers"]["authorization"].startswith("<redacted")
    body = request["body"]
    assert body["model"] == CODEX_DEFAULT_MODEL
    assert body["stream"] is True
    assert body["store"] is False
    assert "tools" not in body  # they come in an "additional_tools" input item
    assert body["input"][0]["type"] == "additional_tools"


def test_codex_tool_round_trip(codex: Runner, tool_recorder: Running) -> None:
    done = codex(tool_recorder.url + "/v1", "Run echo gw-tool-ok and tell me what it printed")
    assert done.returncode == 0, explain(done)
    assert "gw-tool-ok" in done.stdout
    assert done.stdout.strip().startswith("tool said: ")
    first, second = tool_recorder.requests()
    call, output = second["body"]["input"][-2:]
    assert (call["type"], call["name"]) == ("custom_tool_call", "exec")
    assert output["type"] == "custom_tool_call_output"
    assert "gw-tool-ok" in str(output["output"])
