"""Small process helpers for the load tests (start, wait, terminate, free port)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

PY = sys.executable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(
    argv: Sequence[str],
    *,
    cpu: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdout=subprocess.DEVNULL,
    stderr=None,
) -> subprocess.Popen:
    """Start argv (optionally pinned with ``taskset -c cpu``) in its own process group."""
    cmd = list(argv)
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.Popen(
        cmd, env=full_env, cwd=cwd, stdout=stdout, stderr=stderr, start_new_session=True
    )


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {host}:{port} not open after {timeout}s")


def wait_http_ok(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 15.0,
    proc=None,
    poll: float = 0.1,
) -> bytes:
    """Poll (every ``poll`` s) until ``method url`` answers 200; return the body."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while waiting for {url}")
        try:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
            conn.request(method, u.path or "/", body=body, headers=dict(headers or {}))
            r = conn.getresponse()
            data = r.read()
            conn.close()
            if r.status == 200:
                return data
            last = f"status {r.status}: {data[:200]!r}"
        except OSError as e:
            last = e
        time.sleep(poll)
    raise TimeoutError(f"{url} not 200 after {timeout}s (last: {last})")


def terminate(proc: subprocess.Popen | None, timeout: float = 5.0) -> None:
    """SIGTERM the process group started by :func:`start`, then SIGKILL if needed."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout)


# --------------------------------------------------------------------------- /proc
def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all its threads), from /proc; [] if it is gone."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before their children."""
    out: list[int] = []
    todo = children(pid)
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo += children(p)
    return out


def leaf_descendants(pid: int) -> list[int]:
    """Descendants without children: the Granian worker(s) under ``gw serve`` or ``granian``."""
    return [p for p in descendants(pid) if not children(p)]


def rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (VmRSS), 0 if it is gone."""
    return _kb(f"/proc/{pid}/status", "VmRSS:")


def pss_kb(pid: int) -> int:
    """Proportional set size of ``pid`` in KiB (shared pages divided among their sharers), 0 if gone."""
    return _kb(f"/proc/{pid}/smaps_rollup", "Pss:")


def _kb(path: str, field: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
