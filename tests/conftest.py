"""Fixtures that run real processes: `gw serve` (Granian) and the fake upstream.

    def test_x(fake, gateway):
        gw = gateway(config_text)          # a running `gw serve`, ready
        httpx.post(gw.url + "/v1/chat/completions", ...)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from tests.fakes.runner import FakeUpstream
from tests.redis_server import RedisServer

REPO = Path(__file__).resolve().parent.parent
FAKE_KEY = "sk-fake-upstream-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy (gw's metrics and logs lag by up to 0.25 s)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.05)


class Gateway:
    """A `gw serve` process on a free port; its stdout and stderr go to files."""

    def __init__(self, config: Path, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = config.with_suffix(".stdout")
        self.stderr_path = config.with_suffix(".stderr")
        command = [
            sys.executable, "-m", "gw.cli", "serve",
            "--config", str(config), "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(workers),
        ]  # fmt: skip
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.process = subprocess.Popen(
            command, cwd=config.parent, env=full_env, stdout=self._out, stderr=self._err
        )
        self._wait_ready(workers)

    def _wait_ready(self, workers: int, timeout: float = 30.0) -> None:
        """Until /ready answers 200 and every worker logged its start (one answering is not all)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.output()
                self.close()
                raise RuntimeError(f"gw exited with {self.process.returncode}:\n{output}")
            try:
                ready = httpx.get(self.url + "/ready", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready and (workers == 1 or self.output().count("worker started") >= workers):
                return
            time.sleep(0.05)
        output = self.output()
        self.close()
        raise RuntimeError(f"gw not ready after {timeout}s:\n{output}")

    def output(self) -> str:
        """Everything gw printed so far (logs are flushed every 0.2 s)."""
        self._out.flush()
        self._err.flush()
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()
        self._err.close()


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=FAKE_KEY) as upstream:
        yield upstream


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Start `gw serve` on a config text; every gateway started is stopped after the test."""
    started: list[Gateway] = []

    def start(config_text: str, workers: int = 1, env: dict[str, str] | None = None) -> Gateway:
        path = tmp_path / f"config{len(started)}.yaml"
        path.write_text(config_text)
        gw = Gateway(path, workers=workers, env=env)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.close()


def standard_config(fake: FakeUpstream, **overrides: str) -> str:
    """A config with an OpenAI-type and an Azure provider on the fake, echo, and a dead one."""
    dead = free_port()
    text = f"""
server:
  max_body_bytes: 65536
auth:
  keys:
    - name: app
      key: gw-test-key-app-0123456789
      models: ["*"]
    - name: echo-only
      key: gw-test-key-echo-0123456789
      models: ["ech*"]
providers:
  up:
    type: openai
    base_url: {fake.openai_base_url}
    api_key: {FAKE_KEY}
    first_byte_timeout_s: 1
    idle_timeout_s: 1
    timeout_s: 5
  az:
    type: azure
    base_url: {fake.url}
    api_key: {FAKE_KEY}
    api_version: "2024-10-21"
  badkey:
    type: openai
    base_url: {fake.openai_base_url}
    api_key: sk-wrong-provider-key-0123456789
  dead:
    type: openai
    base_url: http://127.0.0.1:{dead}/v1
    connect_timeout_s: 1
  demo:
    type: echo
models:
  gpt:
    targets: [{{provider: up, model: gpt-upstream}}]
  azure-gpt:
    targets: [{{provider: az, model: my-deployment}}]
  wrong-creds:
    targets: [{{provider: badkey, model: gpt-upstream}}]
  dead-only:
    targets: [{{provider: dead, model: nothing}}]
  dead-then-up:
    targets: [{{provider: dead, model: nothing, weight: 100}}, {{provider: up, model: gpt-upstream}}]
  echo:
    targets: [{{provider: demo, model: echo}}]
routing:
  retries: 1
  # Many tests here make the same target fail on purpose: keep its breaker shut.
  circuit_breaker: {{failures: 1000, cooldown_s: 1}}
"""
    for key, value in overrides.items():
        text += f"{key}: {value}\n"
    return text


APP_KEY = "gw-test-key-app-0123456789"
ECHO_KEY = "gw-test-key-echo-0123456789"


@pytest.fixture(scope="module")
def gw_std(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway on the standard config, shared by a test module."""
    path = tmp_path_factory.mktemp("gw") / "config.yaml"
    path.write_text(standard_config(fake))
    gw = Gateway(path)
    yield gw
    gw.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server shared by the session (tests use keys of their own); fails if not installed."""
    server = RedisServer()
    yield server.url
    server.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own, for tests that kill it and start it again on the same port."""
    server = RedisServer()
    yield server
    server.close()
