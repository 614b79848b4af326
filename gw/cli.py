"""``gw serve`` runs the gateway on Granian; ``gw check`` validates and shows the config.

``gw serve`` first checks what would otherwise fail in every worker, again and
again: the config (exit 1 with every problem), gw's compiled modules and the
port (one line and exit 1 each). It prints the config's warnings once, then
execs ``gw.supervisor``: Granian's main process with gw's signals (drain on
SIGTERM, reload on SIGHUP), in a fresh interpreter that never imports the app,
the upstream clients, prometheus-client or the config. Granian's workers
import gw from where this process did, so the installed gw serves even from
its source tree.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from . import serverlogs

if TYPE_CHECKING:
    from .config.tables import Tables

# The directory gw was imported from (site-packages, or a source tree on
# PYTHONPATH): Granian's workers must import the same gw.
ROOT = Path(__file__).resolve().parent.parent

# Runs ``gw.supervisor.run`` from ROOT in a fresh interpreter. -P keeps the working
# directory off ``sys.path``, where a gw source tree (say, the one `pip install .`
# was run in) would shadow the gw this process runs.
_SUPERVISE = """# gw serve: Granian's main process and gw's signals
import sys
sys.path.insert(0, sys.argv[1])
from gw.supervisor import run
sys.exit(run(sys.argv[2]))
"""


def _load(config: str) -> Tables:
    from .config import load_tables

    # Warnings are printed by the caller: `gw check` lists them, `gw serve` logs them once.
    return load_tables(config, warn=False)


def check(config: str) -> int:
    from .config import ConfigError, describe

    try:
        tables = _load(config)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
    print(describe(tables))
    return 0


# Imports gw's compiled modules as a worker will; prints why not. Then makes the
# limits table the workers will share (argv[2]). A child process: `gw serve` itself
# never imports them (nor what they import).
_IMPORT_FAST = """
import sys
sys.path.insert(0, sys.argv[1])
try:
    import gw._fast
except ImportError as exc:
    print(exc.__cause__ or exc)
    sys.exit(1)
try:
    gw._fast.counters.Table(sys.argv[2]).close()
except (OSError, ValueError) as exc:
    print(f"cannot make the limits table {sys.argv[2]}: {exc}")
    sys.exit(2)
"""


def _fast_problem(limits_file: Path) -> str | None:
    """Why Granian's workers could not import gw's compiled modules (each would fail,
    be respawned and fail again): said once here instead. Otherwise makes the table
    in ``limits_file`` (``GW_LIMITS_FILE``) that keeps the memory backend's limits
    across the workers, before any of them maps it."""
    result = subprocess.run(
        [sys.executable, "-P", "-c", _IMPORT_FAST, str(ROOT), str(limits_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0:
        return None
    lines = (result.stdout or result.stderr).strip().splitlines()
    cause = lines[-1] if lines else f"exit status {result.returncode}"
    if result.returncode == 2:
        return cause
    if (ROOT / "setup.py").is_file():  # a source tree, on PYTHONPATH or installed editable
        return (
            f"gw runs from its source tree {ROOT}, whose Cython modules are not compiled"
            f" or out of date ({cause}):"
            f" build them with `make build` (or `python setup.py build_ext --inplace`) in {ROOT},"
            " or serve an installed gw (`pip install .`) without this tree on PYTHONPATH"
        )
    fast = ROOT / "gw" / "_fast"
    return f"gw's compiled modules in {fast} do not import ({cause}): reinstall gw (`pip install .`)"


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
    """Check, print the warnings, then become ``gw.supervisor`` (returns only on a problem)."""
    from .config import ConfigError, log_warnings

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
    state = Path(tempfile.mkdtemp(prefix="gw-"))
    problem = _fast_problem(state / "limits") or _port_taken(server.host, server.port)
    if problem is not None:
        shutil.rmtree(state, ignore_errors=True)
        print(problem, file=sys.stderr)
        return 1

    serverlogs.setup(tables.logging.level, tables.logging.format)
    (state / "metrics").mkdir()
    (state / "reload").touch()
    # The warnings are printed here; workers compiling the same config stay quiet.
    log_warnings(tables, str(state / "warnings"))
    os.environ.update(
        GW_CONFIG=str(Path(config).resolve()),
        GW_DRAIN_FILE=str(state / "draining"),
        GW_LIMITS_FILE=str(state / "limits"),
        GW_RELOAD_FILE=str(state / "reload"),
        GW_WARNINGS_FILE=str(state / "warnings"),
        PROMETHEUS_MULTIPROC_DIR=str(state / "metrics"),
    )
    settings = {
        "config": config,
        "state": str(state),
        "host": server.host,
        "port": server.port,
        "workers": server.workers,
        "drain_timeout_s": server.drain_timeout_s,
        "log_level": tables.logging.level,
        "log_format": tables.logging.format,
    }
    serverlogs.event("gw serving", host=server.host, port=server.port, workers=server.workers, config=config)
    sys.stdout.flush()
    sys.stderr.flush()
    argv = [sys.executable, "-P", "-c", _SUPERVISE, str(ROOT), orjson.dumps(settings).decode()]
    os.execv(sys.executable, argv)


def reload(settings_json: str) -> int:
    """SIGHUP, in a child of the supervisor: if the config is valid, print its warnings
    (once) and tell every worker to reload; otherwise log why the current one stays."""
    from .config import ConfigError, log_warnings

    settings = orjson.loads(settings_json)
    serverlogs.setup(settings["log_level"], settings["log_format"])
    state = Path(settings["state"])
    try:
        tables = _load(settings["config"])
    except ConfigError as exc:
        problems = list(exc.problems)
        serverlogs.event("reload failed: the config is invalid, the current one stays", problems=problems)
        return 1
    log_warnings(tables, str(state / "warnings"))
    with open(state / "reload", "ab") as signal_file:
        signal_file.write(b".")
    serverlogs.event("reloading: every worker swaps in the new config")
    return 0


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
