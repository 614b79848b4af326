"""``gw serve`` runs the gateway on Granian; ``gw check`` validates and shows the config.

``gw serve`` is a small supervisor around Granian's process: it checks the
config first (exit 1 with every problem), then runs Granian with the app, and
owns the signals:

- SIGTERM/SIGINT: drain. ``/ready`` answers 503 while connections are still
  accepted; once no request is in flight (or after ``server.drain_timeout_s``)
  Granian is stopped and gw exits 0.
- SIGHUP: the config is checked; if valid, every worker is told to reload
  (``gw.worker``: a byte appended to the file in ``GW_RELOAD_FILE``) and swaps
  the new tables in without dropping a request; otherwise the old config
  stays and the problems are logged.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from .errors import ConfigError


def _load(config: str):  # type: ignore[no-untyped-def]
    from .config import load_tables

    return load_tables(config)


def check(config: str) -> int:
    from .config import describe

    try:
        tables = _load(config)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
    print(describe(tables))
    return 0


def _die_with_parent() -> None:
    """Granian must not outlive its supervisor, even one killed with SIGKILL."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def serve(config: str, host: str | None, port: int | None, workers: int | None) -> int:
    # Flags beat the environment, which beats the file: pass them on as GW__ overrides.
    for name, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"GW__SERVER__{name}"] = str(value)
    try:
        tables = _load(config)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1

    state = Path(tempfile.mkdtemp(prefix="gw-"))
    metrics_dir = state / "metrics"
    metrics_dir.mkdir()
    drain_file = state / "draining"
    reload_file = state / "reload"
    reload_file.touch()
    env = dict(os.environ)
    env.update(
        GW_CONFIG=str(Path(config).resolve()),
        GW_DRAIN_FILE=str(drain_file),
        GW_RELOAD_FILE=str(reload_file),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    server = tables.server
    command = [
        sys.executable, "-m", "granian",
        "--interface", "asgi",
        "--host", server.host,
        "--port", str(server.port),
        "--workers", str(server.workers),
        "--loop", "uvloop",
        "--no-ws",
        "--log-level", "warning",
        # A worker that dies (OOM, a crash in a native library) is replaced, not fatal.
        "--respawn-failed-workers", "--respawn-interval", "1",
        # After our drain, what is still in flight has had its time: stop it.
        "--workers-kill-timeout", "2",
    ]  # fmt: skip
    from .logs import server_log_config

    server_logs = server_log_config(tables.logging.format)
    if server_logs:
        log_config = state / "granian-logging.json"
        log_config.write_text(json.dumps(server_logs))
        command += ["--log-config", str(log_config)]
    command.append("gw.app:app")
    child = subprocess.Popen(command, env=env, preexec_fn=_die_with_parent)
    signals: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: signals.append(s))

    def log(event: str, **fields: object) -> None:
        from . import logs

        logs.setup(tables.logging.level, tables.logging.format)
        logs.event(event, **fields)
        logs.OUTPUT.flush()

    log("gw serving", host=server.host, port=server.port, workers=server.workers, config=config)
    next_sweep = time.monotonic() + 1
    try:
        while child.poll() is None:
            if not signals:
                time.sleep(0.05)
                if time.monotonic() >= next_sweep:
                    _forget_dead_workers(metrics_dir)
                    next_sweep = time.monotonic() + 1
                continue
            signum = signals.pop(0)
            if signum == signal.SIGHUP:
                try:
                    _load(config)
                except ConfigError as exc:
                    log("reload failed: the config is invalid, the current one stays", problems=list(exc.problems))
                    continue
                with open(reload_file, "ab") as signal_file:
                    signal_file.write(b".")
                log("reloading: every worker swaps in the new config")
                continue
            _drain(child, drain_file, metrics_dir, server.drain_timeout_s, log)
            return 0
        return child.returncode or 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        shutil.rmtree(state, ignore_errors=True)


def _forget_dead_workers(metrics_dir: Path) -> None:
    """Drop the live gauges (in-flight requests, provider up) of workers that died and were respawned."""
    from .metrics import worker_exited

    pids = set()
    for path in metrics_dir.glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit():
            pids.add(int(pid))
    for pid in pids:
        if not Path(f"/proc/{pid}").exists():
            worker_exited(pid, str(metrics_dir))


def _drain(child: subprocess.Popen[bytes], drain_file: Path, metrics_dir: Path, timeout: float, log) -> None:  # type: ignore[no-untyped-def]
    from .metrics import active_requests

    drain_file.touch()
    log("draining", timeout_s=timeout)
    deadline = time.monotonic() + timeout
    # Let load balancers see /ready fail and in-flight requests finish. Workers
    # publish their in-flight count every 0.25 s: two zero readings 0.3 s apart
    # mean nothing was in flight across a whole publishing interval.
    zero_since: float | None = None
    while time.monotonic() < deadline and child.poll() is None:
        if active_requests(str(metrics_dir)) > 0:
            zero_since = None
        elif zero_since is None:
            zero_since = time.monotonic()
        elif time.monotonic() - zero_since >= 0.3:
            break
        time.sleep(0.05)
    left = active_requests(str(metrics_dir))
    log("drained" if left <= 0 else "drain timeout: stopping with requests in flight", in_flight=left)
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    log("stopped")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gw", description="An OpenAI-compatible LLM gateway.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_p = sub.add_parser("serve", help="run the gateway")
    serve_p.add_argument("--config", default=os.environ.get("GW_CONFIG", "config.yaml"))
    serve_p.add_argument("--host")
    serve_p.add_argument("--port", type=int)
    serve_p.add_argument("--workers", type=int)
    check_p = sub.add_parser("check", help="validate the config and print the routing table")
    check_p.add_argument("--config", default=os.environ.get("GW_CONFIG", "config.yaml"))
    args = parser.parse_args(argv)
    if args.command == "check":
        return check(args.config)
    return serve(args.config, args.host, args.port, args.workers)


if __name__ == "__main__":
    sys.exit(main())
