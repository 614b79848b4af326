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

Before starting Granian it also checks what would otherwise fail in every
worker, again and again: gw's compiled modules, and the port (one line and
exit 1 each). Granian's workers import gw from where this process did, so the
installed gw serves even from its source tree. The supervisor itself stays
small: it never imports the app, the upstream clients or prometheus-client.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import functools
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from .config import ConfigError, describe, load_tables, log_warnings
from .config.tables import Tables

# The directory gw was imported from (site-packages, or a source tree on
# PYTHONPATH): Granian's workers must import the same gw.
ROOT = Path(__file__).resolve().parent.parent


def _load(config: str) -> Tables:
    # Warnings are printed by the caller: `gw check` lists them, `gw serve` logs them once.
    return load_tables(config, warn=False)


def check(config: str) -> int:
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


# Imports gw's compiled modules as a worker will; prints why not. A child process,
# so that the supervisor does not keep them (and what they import) in memory.
_IMPORT_FAST = """
import sys
sys.path.insert(0, sys.argv[1])
try:
    import gw._fast
except ImportError as exc:
    print(exc.__cause__ or exc)
    sys.exit(1)
"""


def _not_compiled() -> str | None:
    """Why Granian's workers could not import gw's compiled modules (each would fail,
    be respawned and fail again): said once here instead."""
    result = subprocess.run(
        [sys.executable, "-P", "-c", _IMPORT_FAST, str(ROOT)], capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        return None
    lines = (result.stdout or result.stderr).strip().splitlines()
    cause = lines[-1] if lines else f"exit status {result.returncode}"
    if (ROOT / "setup.py").is_file():  # a source tree, on PYTHONPATH or installed editable
        return (
            f"gw runs from its source tree {ROOT}, whose Cython modules are not compiled or out of date ({cause}):"
            f" build them with `make build` (or `python setup.py build_ext --inplace`) in {ROOT},"
            " or serve an installed gw (`pip install .`) without this tree on PYTHONPATH"
        )
    return f"gw's compiled modules in {ROOT / 'gw' / '_fast'} do not import ({cause}): reinstall gw (`pip install .`)"


def _port_taken(host: str, port: int) -> str | None:
    """Why Granian could not listen on host:port, if it could not (checked by binding once)."""
    change = f"pick another port with --port N or GW__SERVER__PORT=N (server.port: {port})"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        return f"cannot listen on {host}: {exc.strerror} (server.host, --host, GW__SERVER__HOST)"
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Granian: TIME_WAIT is no obstacle
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} is already in use on {host}: stop what listens there, or {change}"
            if exc.errno == errno.EACCES:
                privileged = " (ports below 1024 need privileges)" if port < 1024 else ""
                return f"not allowed to listen on port {port}{privileged}: {change}"
            return f"cannot listen on {host}:{port}: {exc.strerror} (server.host, --host, GW__SERVER__HOST)"
    return None


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
    server = tables.server
    problem = _not_compiled() or _port_taken(server.host, server.port)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1

    from . import logs

    output = logs.setup(tables.logging.level, tables.logging.format)

    def log(event: str, **fields: Any) -> None:
        logs.event(event, **fields)
        output.flush()

    state = Path(tempfile.mkdtemp(prefix="gw-"))
    metrics_dir = state / "metrics"
    metrics_dir.mkdir()
    drain_file = state / "draining"
    reload_file = state / "reload"
    reload_file.touch()
    # The warnings are printed here; workers compiling the same config stay quiet.
    warnings_file = str(state / "warnings")
    log_warnings(tables, warnings_file)
    env = dict(os.environ)
    env.update(
        GW_CONFIG=str(Path(config).resolve()),
        GW_DRAIN_FILE=str(drain_file),
        GW_RELOAD_FILE=str(reload_file),
        GW_WARNINGS_FILE=warnings_file,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    # Granian puts the working directory first on sys.path, where a gw source
    # tree (say, the one `pip install .` was run in) would shadow the gw this
    # process runs: -P keeps it out, --working-dir and the app's file path put
    # ROOT first instead. Relative paths still resolve against the working directory.
    app_file = ROOT / "gw" / "app.py"
    target = f"{app_file}:app" if ":" not in str(app_file) else "gw.app:app"
    command = [
        sys.executable, "-P", "-m", "granian",
        "--working-dir", str(ROOT),
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
    server_logs = logs.server_log_config(tables.logging.format)
    if server_logs:
        log_config = state / "granian-logging.json"
        log_config.write_bytes(orjson.dumps(server_logs))
        command += ["--log-config", str(log_config)]
    command.append(target)
    child = subprocess.Popen(command, env=env, preexec_fn=_die_with_parent)
    signals: list[int] = []
    for handled in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(handled, lambda s, _f: signals.append(s))

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
                    log_warnings(_load(config), warnings_file)
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


# The workers' metrics, as the supervisor reads them: the files of prometheus-client's
# multiprocess mode (PROMETHEUS_MULTIPROC_DIR), which the workers write and each
# worker's /metrics adds up. The supervisor only drops a dead worker's live gauges
# and reads the in-flight count, without importing prometheus-client (or gw.metrics).


def _forget_dead_workers(metrics_dir: Path) -> None:
    """Drop the live gauges (in-flight requests, provider up) of workers that died and were respawned.

    What ``prometheus_client.multiprocess.mark_process_dead`` does: remove ``gauge_live*_PID.db``.
    """
    for path in metrics_dir.glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            path.unlink(missing_ok=True)


@functools.cache
def _mmap_dict() -> ModuleType:
    """prometheus-client's reader of those files, loaded alone: importing the package
    (its ``__init__``) would bring in the whole client."""
    found = importlib.util.find_spec("prometheus_client")
    where = found.submodule_search_locations if found is not None else None
    spec = where and importlib.util.spec_from_file_location(
        "_gw_prometheus_mmap_dict", Path(next(iter(where))) / "mmap_dict.py"
    )
    if not spec or spec.loader is None:
        raise ImportError("prometheus_client.mmap_dict not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _active_requests(metrics_dir: Path) -> float:
    """Requests in flight over all live workers: the sum of their ``gw_active_requests`` gauges."""
    try:
        read = _mmap_dict().MmapedDict.read_all_values_from_file
    except (ImportError, OSError, AttributeError):  # another prometheus-client: ask it the long way
        from .metrics import active_requests

        return active_requests(str(metrics_dir))
    total = 0.0
    for path in metrics_dir.glob("gauge_livesum_*.db"):
        try:
            for key, value, *_ in read(str(path)):
                if orjson.loads(key)[0] == "gw_active_requests":
                    total += value
        except (OSError, RuntimeError, ValueError):
            continue  # a worker's file being created or removed: the next reading counts
    return total


def _drain(
    child: subprocess.Popen[bytes], drain_file: Path, metrics_dir: Path, timeout: float, log: Callable[..., Any]
) -> None:
    drain_file.touch()
    log("draining", timeout_s=timeout)
    deadline = time.monotonic() + timeout
    # Let load balancers see /ready fail and in-flight requests finish. Workers
    # publish their in-flight count every 0.25 s: two zero readings 0.3 s apart
    # mean nothing was in flight across a whole publishing interval.
    zero_since: float | None = None
    while time.monotonic() < deadline and child.poll() is None:
        if _active_requests(metrics_dir) > 0:
            zero_since = None
        elif zero_since is None:
            zero_since = time.monotonic()
        elif time.monotonic() - zero_since >= 0.3:
            break
        time.sleep(0.05)
    left = _active_requests(metrics_dir)
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
