"""``gw serve``'s long-lived process: Granian's main process, with gw's signals.

``gw.cli`` checks the config, the compiled modules and the port, then execs
``run`` in a fresh interpreter (one process: nothing stays behind as a parent).
It loads Granian, ``logging`` and orjson, never the app, the upstream clients,
prometheus-client or the config package: the workers Granian forks from it
import those themselves. It owns the signals:

- SIGTERM/SIGINT: drain. ``/ready`` answers 503 while connections are still
  accepted; once no request is in flight (or after ``server.drain_timeout_s``)
  Granian stops its workers and gw exits 0.
- SIGHUP: a child process checks the config (``gw.cli.reload``); if valid,
  every worker is told to reload (``gw.worker``: a byte appended to the file in
  ``GW_RELOAD_FILE``) and swaps the new tables in without dropping a request;
  otherwise the old config stays and the problems are logged.

Every second it also drops the live gauges of workers that died (Granian
respawns them). A worker dies with this process, even one killed with SIGKILL.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
from granian.constants import Interfaces, Loops
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import MPServer
from granian.server.mp import WorkerProcess

from . import serverlogs

# Where this gw was imported from (site-packages, or a source tree): the config
# check on SIGHUP runs the same gw.
ROOT = Path(__file__).resolve().parent.parent

_RELOAD = """# gw serve: the config check on SIGHUP
import sys
sys.path.insert(0, sys.argv[1])
from gw.cli import reload
sys.exit(reload(sys.argv[2]))
"""


class Granian(MPServer):
    """Granian's main process, whose signals wait in ``signals`` for the supervisor
    (Granian's own would stop at once on SIGTERM and restart the workers on SIGHUP).
    Processes, not threads: the workers' metrics are per process."""

    def __init__(self, signals: queue.SimpleQueue[int], **options: Any) -> None:
        super().__init__(**options)
        self.signals = signals

    def signal_handler_interrupt(self, signum: int, *_: object) -> None:
        # Sent to the process group (Ctrl-C in a terminal, killpg), the signal stops the
        # workers too: part of stopping, not a crash to log and respawn.
        for worker in self.wrks:
            worker.interrupt_by_parent = True
        self.signals.put(signum)  # SimpleQueue.put is safe in a signal handler

    def _spawn_worker(self, *args: Any, **kwargs: Any) -> WorkerProcess:
        worker = super()._spawn_worker(*args, **kwargs)
        worker.__class__ = _Worker  # before its start(), which starts the watcher
        return worker

    def signal_handler_reload(self, signum: int, *_: object) -> None:
        self.signals.put(signum)

    def stop(self) -> None:
        """Stop the workers (SIGTERM, SIGKILL after ``workers_kill_timeout``) and return from ``serve``."""
        self.interrupt_signal = True
        self.main_loop_interrupt.set()


class _Worker(WorkerProcess):
    def _watcher(self) -> None:
        self.inner.join()
        # A signal sent to the process group reaches a worker and this process at once;
        # the worker can be gone before the main thread has run the handler that marks
        # it interrupted. Give that handler a moment before calling the exit unexpected.
        deadline = time.monotonic() + 0.5
        while not self.interrupt_by_parent and time.monotonic() < deadline:
            time.sleep(0.01)
        super()._watcher()  # type: ignore[no-untyped-call]  # unannotated in Granian


def run(settings_json: str) -> int:
    """Serve until drained; ``settings`` as written by ``gw.cli.serve``."""
    settings: dict[str, Any] = orjson.loads(settings_json)
    signals: queue.SimpleQueue[int] = queue.SimpleQueue()
    for handled in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(handled, lambda signum, _frame: signals.put(signum))
    handler = serverlogs.setup(settings["log_level"], settings["log_format"])
    os.register_at_fork(after_in_child=functools.partial(_in_worker, handler))
    state = Path(settings["state"])
    server = Granian(
        signals,
        target="gw.app:app",
        address=settings["host"],
        port=settings["port"],
        interface=Interfaces.ASGI,
        workers=settings["workers"],
        loop=Loops.uvloop,
        websockets=False,
        http1_settings=HTTP1Settings(),
        log_level=LogLevels.warning,
        log_dictconfig=serverlogs.server_log_config(settings["log_format"]) or None,
        # A worker that dies (OOM, a crash in a native library) is replaced, not fatal.
        respawn_failed_workers=True,
        respawn_interval=1,
        # After our drain, what is still in flight has had its time: stop it.
        workers_kill_timeout=2,
    )
    threading.Thread(target=_supervise, args=(server, settings_json), daemon=True).start()
    try:
        server.serve(target_loader=_load_app)
    except SystemExit as exc:  # Granian exits 1 when its workers keep crashing
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        shutil.rmtree(state, ignore_errors=True)
    serverlogs.event("stopped")
    return 0


def _load_app(target: str) -> Any:
    """The ASGI app, in a worker: imported from the gw this process runs (Granian's own
    loader would put the working directory first on ``sys.path``)."""
    from gw.app import app

    return app


def _in_worker(handler: logging.Handler) -> None:
    """Right after Granian forks a worker: the worker writes its own log lines (``gw.logs``),
    and dies with this process."""
    logging.getLogger("gw").removeHandler(handler)
    # Not this process's handlers, which would swallow a SIGTERM that comes before the
    # worker's own (set once it serves): it stops at once. SIGHUP is this process's to act on.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        # SIGKILL: with this process gone, nothing would end a worker whose graceful stop
        # hangs (Granian's does when the stop comes while the worker is still starting).
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _supervise(server: Granian, settings_json: str) -> None:
    settings = orjson.loads(settings_json)
    state = Path(settings["state"])
    metrics_dir = state / "metrics"
    while True:
        try:
            signum = server.signals.get(timeout=1)
        except queue.Empty:
            _forget_dead_workers(metrics_dir)
            continue
        if signum == signal.SIGHUP:
            _reload(settings_json)
            continue
        _drain(state / "draining", metrics_dir, float(settings["drain_timeout_s"]))
        server.stop()
        return


def _reload(settings_json: str) -> None:
    """Check the config in a child process (this one keeps no config code in memory); it logs the outcome."""
    argv = [sys.executable, "-P", "-c", _RELOAD, str(ROOT), settings_json]
    result = subprocess.run(argv, check=False)
    if result.returncode not in (0, 1):  # 1: the config is invalid, and the child said so
        serverlogs.event("reload failed: the config check did not finish", exit_status=result.returncode)


def _drain(drain_file: Path, metrics_dir: Path, timeout: float) -> None:
    drain_file.touch()
    serverlogs.event("draining", timeout_s=timeout)
    deadline = time.monotonic() + timeout
    # Let load balancers see /ready fail and in-flight requests finish. Workers
    # publish their in-flight count every 0.25 s: two zero readings 0.3 s apart
    # mean nothing was in flight across a whole publishing interval.
    zero_since: float | None = None
    while time.monotonic() < deadline:
        if _active_requests(metrics_dir) > 0:
            zero_since = None
        elif zero_since is None:
            zero_since = time.monotonic()
        elif time.monotonic() - zero_since >= 0.3:
            break
        time.sleep(0.05)
    left = _active_requests(metrics_dir)
    outcome = "drained" if left <= 0 else "drain timeout: stopping with requests in flight"
    serverlogs.event(outcome, in_flight=left)


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
