"""`gw serve` and `gw check` as a user runs them: workers, drain, config errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, Gateway
from tests.fakes.runner import FakeUpstream

pytestmark = pytest.mark.integration

ECHO_ONLY = """
providers:
  demo: {type: echo}
models:
  echo: {targets: [{provider: demo, model: echo}]}
"""


def run_gw(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gw.cli", *args],
        cwd=cwd or REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_prints_the_compiled_routing_table() -> None:
    result = run_gw("check", "--config", "config.yaml")
    assert result.returncode == 0, result.stderr
    assert "echo" in result.stdout and "demo/echo weight=1 (100%)" in result.stdout


def test_check_and_serve_exit_1_with_file_key_path_and_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(ECHO_ONLY + "server:\n  port: fast\n")
    for command in (("check",), ("serve",)):
        result = run_gw(*command, "--config", str(bad))
        assert result.returncode == 1
        assert f"{bad}: server.port: expected an integer, got 'fast'" in result.stderr


def test_import_without_the_compiled_modules_says_how_to_build(tmp_path: Path) -> None:
    shutil.copytree(REPO / "gw", tmp_path / "gw", ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
    result = subprocess.run(
        [sys.executable, "-c", "import gw._fast"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "gw._fast is not compiled: run `pip install .`" in result.stderr


def _request_lines(gw: Gateway) -> list[dict]:
    lines = []
    for line in gw.output().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == "request":
                lines.append(record)
    return lines


def test_two_workers_serve_and_metrics_add_up_across_them(gateway) -> None:
    gw = gateway(ECHO_ONLY, workers=2)
    n = 120

    def burst() -> None:
        for _ in range(n // 6):
            # a new connection each time, so the kernel spreads them over both workers
            r = httpx.post(gw.url + "/v1/chat/completions",
                           json={"model": "echo", "messages": [{"role": "user", "content": "a b"}]})
            assert r.status_code == 200

    threads = [threading.Thread(target=burst) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def total(text: str, name: str, match: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name + "{") and match in line
        )

    # Workers publish metrics every 0.25 s and flush logs every 0.2 s.
    deadline = time.monotonic() + 5
    while True:
        text = httpx.get(gw.url + "/metrics").text
        requests = total(text, "gw_requests_total", 'model="echo"')
        workers = {line["worker"] for line in _request_lines(gw) if line["endpoint"] == "chat"}
        if (requests == n and len(workers) == 2) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(workers) == 2, "both workers should have answered some of the requests"
    assert requests == n
    assert total(text, "gw_tokens_total", 'type="completion"') == 2 * n


def _drain_config(fake: FakeUpstream, drain_s: float) -> str:
    return f"""
server: {{drain_timeout_s: {drain_s}}}
providers:
  up: {{type: openai, base_url: {fake.openai_base_url}, api_key: sk-fake-upstream-key-0123456789abcdef}}
  demo: {{type: echo}}
models:
  gpt: {{targets: [{{provider: up, model: m}}]}}
  echo: {{targets: [{{provider: demo, model: echo}}]}}
"""


def _slow_stream(gw: Gateway, chunks: int, out: dict) -> None:
    body = {"model": "gpt", "stream": True, "messages": [{"role": "user", "content": "x"}],
            "fake": {"chunks": chunks, "chunk_delay_s": 0.1}}
    try:
        with httpx.stream("POST", gw.url + "/v1/chat/completions", json=body, timeout=30) as resp:
            out["status"] = resp.status_code
            text = ""
            for part in resp.iter_text():
                text += part
                out["started"] = True
            out["text"] = text
    except httpx.HTTPError as exc:
        out["error"] = repr(exc)


def test_sigterm_drains_ready_turns_503_new_requests_still_served_stream_finishes(fake, gateway) -> None:
    gw = gateway(_drain_config(fake, 20))
    out: dict = {}
    reader = threading.Thread(target=_slow_stream, args=(gw, 20, out))
    reader.start()
    deadline = time.monotonic() + 5
    while not out.get("started") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert out.get("started")
    gw.terminate()
    deadline = time.monotonic() + 2
    while httpx.get(gw.url + "/ready").status_code != 503 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert httpx.get(gw.url + "/ready").status_code == 503
    during = httpx.post(gw.url + "/v1/chat/completions", json={"model": "echo", "messages": [{"role": "user", "content": "still here"}]})
    assert during.status_code == 200
    assert gw.process.poll() is None, "gw must wait for the stream in flight"
    reader.join(timeout=10)
    assert out["text"].endswith("data: [DONE]\n\n") and '"error"' not in out["text"]
    assert gw.process.wait(timeout=10) == 0


def test_drain_stops_waiting_after_drain_timeout(fake, gateway) -> None:
    gw = gateway(_drain_config(fake, 1))
    out: dict = {}
    reader = threading.Thread(target=_slow_stream, args=(gw, 200, out))  # 20 s long
    reader.start()
    deadline = time.monotonic() + 5
    while not out.get("started") and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    gw.terminate()
    assert gw.process.wait(timeout=15) == 0
    assert time.monotonic() - started < 8
    reader.join(timeout=10)


def test_a_killed_worker_is_replaced_and_the_gateway_keeps_serving(gateway) -> None:
    gw = gateway(ECHO_ONLY, workers=2)
    body = {"model": "echo", "messages": [{"role": "user", "content": "a b"}]}
    pids: set[int] = set()
    deadline = time.monotonic() + 10
    while len(pids) < 2 and time.monotonic() < deadline:
        pids.add(httpx.get(gw.url + "/health/detailed").json()["pid"])
    assert len(pids) == 2, "both workers should answer"
    victim = min(pids)
    os.kill(victim, 9)
    # Served throughout by the other worker, then by both again.
    seen: set[int] = set()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not (seen - pids):
        assert httpx.post(gw.url + "/v1/chat/completions", json=body).status_code == 200
        seen.add(httpx.get(gw.url + "/health/detailed").json()["pid"])
        time.sleep(0.05)
    assert gw.process.poll() is None, "gw serve must outlive a worker"
    assert seen - pids, "a new worker took the killed one's place"
    # Granian's own line about it is a JSON line like gw's.
    lines = [json.loads(line) for line in gw.output().splitlines() if "Unexpected exit" in line]
    assert lines and lines[0]["logger"] == "granian"
