"""The real agents, end to end: Claude Code and Codex, each with its default model, against gw.

Each CLI runs non-interactively and offline (tests/agents/conftest.py) against a ``gw serve``
on 127.0.0.1, with echo behind it for a plain prompt and a scripted fake for a tool round
trip (the fake's mode: ``tool_calls`` first, then ``quote_tools`` answers the tool's result).

Claude Code speaks ``/v1/messages``, Codex ``/v1/responses``. The ``_patterns`` tests route
the CLIs' default model names by ``claude-*`` / ``gpt-*``; the others name them exactly
(tests/agents/PROTOCOL.md). Codex's round trip goes to the OpenAI fake as chat completions
(``responses: convert``): its code-mode ``exec`` tool is a custom tool there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.agents.conftest import Runner, explain
from tests.agents.test_recorder import CLAUDE_DEFAULT_MODEL, CODEX_DEFAULT_MODEL
from tests.conftest import FAKE_KEY, Gateway
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.runner import FakeUpstream

pytestmark = [pytest.mark.agents, pytest.mark.integration]

PLAIN = "Say hello to gw-plain-7f3a"
TOOL_PROMPT = "Run echo gw-tool-ok and tell me what it printed"
# Codex's default model calls its code-mode tool: JavaScript that runs the shell command.
CODEX_EXEC_SOURCE = 'const r = await tools.exec_command({cmd: "echo gw-tool-ok"});\ntext(r.output);\n'


def config(models: dict[str, str], anthropic: AnthropicFake | None = None, openai: FakeUpstream | None = None) -> str:
    """A gw config: echo, the fakes given, and ``models`` (model name -> provider); the OpenAI
    fake is there twice: ``fake-openai`` converts /v1/responses, ``fake-openai-native`` passes it."""
    text = "providers:\n  demo: {type: echo}\n"
    if anthropic is not None:
        text += f"  fake-anthropic: {{type: anthropic, base_url: {anthropic.url}/v1, api_key: {FAKE_KEY}}}\n"
    if openai is not None:
        # responses: convert: Codex's requests reach the fake as chat completions (its scripted tool calls)
        text += (
            f"  fake-openai: {{type: openai, base_url: {openai.openai_base_url}, api_key: {FAKE_KEY},"
            " responses: convert}\n"
            f"  fake-openai-native: {{type: openai, base_url: {openai.openai_base_url}, api_key: {FAKE_KEY}}}\n"
        )
    text += "models:\n"
    for name, provider in models.items():
        model = "echo" if provider == "demo" else "upstream-model"
        text += f'  "{name}": {{targets: [{{provider: {provider}, model: {model}}}]}}\n'
    return text


@pytest.fixture
def anthropic_fake() -> Iterator[AnthropicFake]:
    with AnthropicFake(api_key=FAKE_KEY) as upstream:
        yield upstream


@pytest.fixture
def openai_fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=FAKE_KEY) as upstream:
        yield upstream


# -- Claude Code (POST /v1/messages?beta=true)


def test_claude_plain(claude: Runner, gateway: Callable[..., Gateway]) -> None:
    gw = gateway(config({CLAUDE_DEFAULT_MODEL: "demo"}))
    done = claude(gw.url, PLAIN)
    assert done.returncode == 0, explain(done)
    # echo answers with the last user turn: Claude Code's <system-reminder> text, then the prompt.
    assert done.stdout.strip().endswith(PLAIN), explain(done)


def test_claude_plain_patterns(claude: Runner, gateway: Callable[..., Gateway]) -> None:
    gw = gateway(config({"claude-*": "demo", "gpt-*": "demo"}))
    done = claude(gw.url, PLAIN)
    assert done.returncode == 0, explain(done)
    assert done.stdout.strip().endswith(PLAIN), explain(done)


@pytest.mark.parametrize("backend", ["anthropic", "openai"])
def test_claude_tool_round_trip(
    backend: str, claude: Runner, gateway: Callable[..., Gateway], request: pytest.FixtureRequest
) -> None:
    """The backend asks for ``Bash`` ``echo gw-tool-ok``; Claude Code runs it and sends the result
    back through gw; the backend quotes it."""
    fake: FakeUpstream = request.getfixturevalue(f"{backend}_fake")
    fake.set_mode(tool_calls=[{"name": "Bash", "arguments": {"command": "echo gw-tool-ok"}}], quote_tools=True)
    gw = gateway(config({CLAUDE_DEFAULT_MODEL: f"fake-{backend}"}, **{backend: fake}))
    done = claude(gw.url, TOOL_PROMPT, "--allowedTools", "Bash")
    assert done.returncode == 0, explain(done)
    sent = fake.requests()
    # gw forwards Claude Code's anthropic-beta: the fake takes its beta fields (a "system" turn,
    # tools' defer_loading) at once, so the round trip is two requests (PROTOCOL.md, "On errors").
    assert len(sent) == 2, [r["body"] for r in sent]
    assert "gw-tool-ok" in str(sent[-1]["body"]["messages"][-1]["content"])
    assert done.stdout.strip().startswith("fake: "), explain(done)
    assert done.stdout.strip().endswith("=gw-tool-ok"), explain(done)


# -- Codex (POST /v1/responses)


def test_codex_plain(codex: Runner, gateway: Callable[..., Gateway]) -> None:
    gw = gateway(config({CODEX_DEFAULT_MODEL: "demo"}))
    done = codex(gw.url + "/v1", PLAIN)
    assert done.returncode == 0, explain(done)
    assert done.stdout.strip().endswith(PLAIN), explain(done)


def test_codex_plain_patterns(codex: Runner, gateway: Callable[..., Gateway]) -> None:
    gw = gateway(config({"claude-*": "demo", "gpt-*": "demo"}))
    done = codex(gw.url + "/v1", PLAIN)
    assert done.returncode == 0, explain(done)
    assert done.stdout.strip().endswith(PLAIN), explain(done)


def test_codex_tool_round_trip(codex: Runner, gateway: Callable[..., Gateway], openai_fake: FakeUpstream) -> None:
    """The backend (chat completions) calls Codex's code-mode tool ``exec`` with JavaScript that
    runs ``echo gw-tool-ok``; gw must carry it to Codex as the Responses API's call of that
    (custom, freeform) tool, and the tool's output back as a tool message."""
    openai_fake.set_mode(tool_calls=[{"name": "exec", "arguments": CODEX_EXEC_SOURCE}], quote_tools=True)
    gw = gateway(config({CODEX_DEFAULT_MODEL: "fake-openai"}, openai=openai_fake))
    done = codex(gw.url + "/v1", TOOL_PROMPT)
    assert done.returncode == 0, explain(done)
    assert len(openai_fake.requests()) == 2
    assert "gw-tool-ok" in done.stdout, explain(done)
    assert done.stdout.strip().startswith("fake: "), explain(done)


def test_codex_through_a_native_responses_backend(
    codex: Runner, gateway: Callable[..., Gateway], openai_fake: FakeUpstream
) -> None:
    """Passed through: the fake's own /v1/responses gets Codex's request as it is (its
    additional_tools item, store: false...) but for the model, and its stream reaches Codex."""
    gw = gateway(config({"gpt-*": "fake-openai-native"}, openai=openai_fake))
    done = codex(gw.url + "/v1", PLAIN)
    assert done.returncode == 0, explain(done)
    assert done.stdout.strip().endswith("fake: " + PLAIN), explain(done)
    (sent,) = openai_fake.requests()
    assert sent["path"] == "/v1/responses" and sent["body"]["model"] == "upstream-model"
    assert sent["body"]["store"] is False
    assert any(item.get("type") == "additional_tools" for item in sent["body"]["input"])
