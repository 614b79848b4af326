"""Start a fake upstream as a process, for tests and load tests.

    with FakeUpstream(api_key="sk-test") as fake:
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test")
        ...
        fake.wait_for(lambda s: s["client_disconnects"] >= 1)

    with FakeUpstream() as fake:
        fake.set_mode(status=503, times=2)   # the next two requests fail
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 10.0


class FakeUpstream:
    """A fake upstream server process (default: the OpenAI/Azure fake)."""

    module = "tests.fakes.openai_server"

    def __init__(
        self,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        extra_args: Sequence[str] = (),
        cpu: str | None = None,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.extra_args = tuple(extra_args)
        self.cpu = cpu
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None

    # -- lifecycle

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", self.module, "--host", self.host, "--port", "0"]
        if self.api_key is not None:
            cmd += ["--api-key", self.api_key]
        cmd += list(self.extra_args)
        if self.cpu is not None:
            cmd = ["taskset", "-c", str(self.cpu), *cmd]
        return cmd

    def __enter__(self) -> FakeUpstream:
        env = dict(os.environ)
        root = str(REPO_ROOT)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["PYTHONUNBUFFERED"] = "1"
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            self.command(),
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        try:
            self.port = self._read_port()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _read_port(self) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        data = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while b"\n" not in data:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"fake upstream did not start in {START_TIMEOUT_S}s: {self._err()}")
                if sel.select(left):
                    piece = os.read(self.proc.stdout.fileno(), 4096)
                    if not piece:
                        self.proc.wait(timeout=5)
                        raise RuntimeError(
                            f"fake upstream exited with {self.proc.returncode}: {self._err()}"
                        )
                    data += piece
        line = data.split(b"\n", 1)[0].decode()
        word, _, port = line.partition(" ")
        if word != "LISTENING" or not port.strip().isdigit():
            raise RuntimeError(f"fake upstream said {line!r}: {self._err()}")
        return int(port)

    def _err(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-4000:]

    def _stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    # -- addresses

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    # -- admin helpers

    def _get(self, path: str) -> Any:
        r = httpx.get(self.url + path, timeout=5.0)
        r.raise_for_status()
        return r.json()

    def requests(self) -> list[dict]:
        """The last 1,000 recorded requests, oldest first."""
        return self._get("/_fake/requests")

    def stats(self) -> dict:
        return self._get("/_fake/stats")

    def reset(self) -> None:
        """Forget the recorded requests, zero the counters, clear the mode."""
        httpx.post(self.url + "/_fake/reset", timeout=5.0).raise_for_status()

    def set_mode(self, **directive: Any) -> dict:
        """Steer every request without a directive of its own; the mode as set.

            fake.set_mode(status=503)                       # until changed
            fake.set_mode(fault="hang", times=2)            # the next two requests
            fake.set_mode(status=429, retry_after="1")
        """
        r = httpx.post(self.url + "/_fake/mode", json=directive, timeout=5.0)
        if r.status_code == 400:
            raise ValueError(r.json()["error"])
        r.raise_for_status()
        return r.json()

    def clear_mode(self) -> None:
        self.set_mode()

    def mode(self) -> dict:
        """The current mode (``times``: how many requests it has left); ``{}`` when none."""
        return self._get("/_fake/mode")

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 5.0) -> dict:
        """Poll stats until ``predicate(stats)`` holds; return those stats."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if predicate(stats):
                return stats
            if time.monotonic() >= deadline:
                raise AssertionError(f"fake upstream stats never matched within {timeout}s: {stats}")
            time.sleep(0.02)
