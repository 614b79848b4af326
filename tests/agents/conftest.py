"""Fixtures of the agent tests: the real Claude Code and Codex CLIs, installed and run offline.

``agents_bin`` installs the pinned CLIs (``tests/agents/install.sh``: npm into ``.agents/``,
Node.js from Debian when missing) or finds them; the tests skip only when node/npm cannot be
had. ``claude(base_url, prompt, ...)`` and ``codex(base_url, prompt, ...)`` run one CLI
non-interactively in a fresh home and working directory, with no telemetry, update check or
other traffic, and return the finished process (``.returncode``, ``.stdout``, ``.stderr``).
Neither is given a model: each uses its default (tests/agents/PROTOCOL.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.conftest import REPO

INSTALL = REPO / "tests" / "agents" / "install.sh"
CLAUDE_KEY = "sk-ant-agents-test-0123456789"
CODEX_KEY = "sk-agents-test-0123456789"
RUN_TIMEOUT_S = 120

# Claude Code: the API at ANTHROPIC_BASE_URL (it appends /v1/messages?beta=true), no telemetry,
# error reporting, auto-update, or other non-essential traffic (CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC
# covers the three others too; they are set for clarity).
CLAUDE_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_BUG_COMMAND": "1",
    # Fail fast on a gw error instead of retrying for minutes (it retries 5xx with backoff).
    "CLAUDE_CODE_MAX_RETRIES": "1",
}

# Codex: a custom provider at gw, the Responses API, the key from an environment variable.
CODEX_CONFIG = """\
model_provider = "gw"
check_for_update_on_startup = false

[model_providers.gw]
name = "gw"
base_url = "{base_url}"
env_key = "GW_AGENTS_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false
"""


@pytest.fixture(scope="session")
def agents_bin() -> Path:
    """The directory of the ``claude`` and ``codex`` executables (installed when missing)."""
    given = os.environ.get("GW_AGENTS_BIN")
    if given:
        return Path(given)
    if shutil.which("bash") is None:
        pytest.skip("no bash to run tests/agents/install.sh")
    done = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True, timeout=900)
    if done.returncode == 3:
        pytest.skip(f"node/npm are missing and could not be installed:\n{done.stderr[-2000:]}")
    if done.returncode != 0:
        raise RuntimeError(f"tests/agents/install.sh failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def _base_env(home: Path) -> dict[str, str]:
    # A clean environment: no proxy, no real keys or settings from the machine leak in.
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
    }


def _run(command: Sequence[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command), env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=RUN_TIMEOUT_S,
    )  # fmt: skip


Runner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def claude(agents_bin: Path, tmp_path: Path) -> Runner:
    """``claude(base_url, prompt, *args)``: ``claude -p PROMPT *args`` against ``base_url``."""

    def run(base_url: str, prompt: str, *args: str) -> subprocess.CompletedProcess[str]:
        home, work = tmp_path / "claude-home", tmp_path / "claude-work"
        home.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        env = _base_env(home) | CLAUDE_ENV | {"ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": CLAUDE_KEY}
        return _run([str(agents_bin / "claude"), "-p", prompt, *args], env, work)

    return run


@pytest.fixture
def codex(agents_bin: Path, tmp_path: Path) -> Runner:
    """``codex(base_url, prompt, *args)``: ``codex exec ... PROMPT`` with a provider at ``base_url``
    (which ends in /v1)."""

    def run(base_url: str, prompt: str, *args: str) -> subprocess.CompletedProcess[str]:
        home, work, codex_home = tmp_path / "codex-home", tmp_path / "codex-work", tmp_path / "codex-config"
        for path in (home, work, codex_home):
            path.mkdir(exist_ok=True)
        (codex_home / "config.toml").write_text(CODEX_CONFIG.format(base_url=base_url))
        env = _base_env(home) | {"CODEX_HOME": str(codex_home), "GW_AGENTS_KEY": CODEX_KEY}
        command = [str(agents_bin / "codex"), "exec", "--skip-git-repo-check", "--ephemeral", "--color", "never",
                   *args, prompt]  # fmt: skip
        return _run(command, env, work)

    return run


def explain(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
