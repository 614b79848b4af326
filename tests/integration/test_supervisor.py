"""`gw serve`'s long-lived process (gw/supervisor.py): a signal to the whole process
group and a SIGKILL of `gw serve` itself. Drain and SIGHUP are in test_serve.py and
test_reload.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, eventually, free_port

pytestmark = pytest.mark.integration

ECHO = """
providers:
  demo: {type: echo}
models:
  echo: {targets: [{provider: demo, model: echo}]}
"""


class Serve:
    """`gw serve` in a session of its own (its process group: it and its workers)."""

    def __init__(self, tmp_path: Path, workers: int) -> None:
        (tmp_path / "config.yaml").write_text(ECHO)
        self.url = f"http://127.0.0.1:{free_port()}"
        self.out = tmp_path / "out"
        # TMPDIR: the state directory a SIGKILL leaves behind is the test's
        env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)}
        with open(self.out, "wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gw.cli", "serve", "--config", "config.yaml",
                 "--port", self.url.rsplit(":", 1)[1], "--workers", str(workers)],
                cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        eventually(self._ready, 30, "gw serve ready")

    def _ready(self) -> bool:
        assert self.process.poll() is None, self.out.read_text()
        try:
            return httpx.get(self.url + "/ready", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def workers(self) -> list[int]:
        with open(f"/proc/{self.process.pid}/task/{self.process.pid}/children") as f:
            return [int(pid) for pid in f.read().split()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for whoever inherited it to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[int], Serve]]:
    started: list[Serve] = []

    def start(workers: int) -> Serve:
        started.append(Serve(tmp_path, workers))
        return started[-1]

    yield start
    for s in started:
        s.stop()


def test_sigterm_to_the_process_group_drains_and_stops_without_a_worker_crash(serve) -> None:
    # Ctrl-C in a terminal, killpg: the workers get the signal too and stop by themselves.
    gw = serve(2)
    os.killpg(gw.process.pid, signal.SIGTERM)
    assert gw.process.wait(timeout=30) == 0
    out = gw.out.read_text()
    assert '"event":"drained"' in out and '"event":"stopped"' in out
    assert "Unexpected exit" not in out and '"level":"error"' not in out


def test_the_workers_die_with_gw_serve_even_killed_with_sigkill(serve) -> None:
    gw = serve(2)
    workers = gw.workers()
    assert len(workers) == 2
    gw.process.kill()
    gw.process.wait()
    eventually(lambda: not any(alive(pid) for pid in workers), 10, "the workers gone")
