"""A worker's runtime over its life: start-up, hot reload, shutdown.

    worker = Worker(config_path)           # create_app makes one: app.worker
    worker.start(tables)                   # the app's on_start
    worker.runtime                         # what new requests are served with
    summary = worker.reload()              # POST /admin/reload; raises ConfigError
    await worker.stop()                    # the app's on_stop

A reload compiles the config file again and, if it is valid, swaps the new
runtime in atomically: requests already running finish on the runtime they
started with, whose upstream clients close once its last request ends; clients
and breakers of unchanged providers are kept. An invalid config changes nothing
and is logged.

Every worker reloads: ``gw serve`` names a file in ``GW_RELOAD_FILE`` and
appends a byte to it on SIGHUP (after checking the config); a worker that
reloaded on ``POST /admin/reload`` appends one too. Each worker looks at the
file's size every 0.5 s and reloads when it grew.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from . import logs, metrics
from .cache import ResponseCache, cache_of
from .config import load_tables
from .config.tables import Tables
from .errors import ConfigError
from .limits import Backend, backend_of
from .probes import HealthChecker
from .routing import Clock
from .runtime import Runtime

_POLL_S = 0.5


class Worker:
    """One worker process's state: its runtime, metrics batch and log output, its health
    checks, the reload signal. ``create_app`` makes one (``app.worker``)."""

    def __init__(
        self,
        config_path: str = "config.yaml",
        clock: Clock = time.monotonic,
    ) -> None:
        self.config_path = config_path
        self.clock = clock
        self.runtime: Runtime | None = None  # None while starting and after stopping
        self.batch = metrics.Batch()
        self.output = logs.Output()
        self.checker: HealthChecker | None = None
        self.limits: Backend | None = None  # gw's own limits' shared state, kept across reloads
        self.cache: ResponseCache | None = None  # the response cache, kept across reloads
        self._signal_file = os.environ.get("GW_RELOAD_FILE") or None
        # Read before the caller loads the config: a reload announced while this
        # worker starts (after its config was read) still reaches it.
        self._seen = self._signal_size()
        self._poller: asyncio.TimerHandle | None = None

    def start(self, tables: Tables) -> Runtime:
        self.limits = backend_of(tables)
        self.cache = cache_of(tables.cache)
        runtime = Runtime(tables, clock=self.clock, limits=self.limits, cache=self.cache)
        self._swap(runtime)
        if self._signal_file is not None:
            self._poller = asyncio.get_running_loop().call_later(_POLL_S, self._poll)
        return runtime

    def reload(self, announce: bool = True) -> dict[str, Any]:
        """Compile the config again and swap it in; tell the other workers when ``announce``.

        Raises ``ConfigError`` (after logging it) when the config is invalid.
        """
        old = self.runtime
        assert old is not None
        try:
            tables = load_tables(self.config_path)
        except ConfigError as exc:
            logs.event(
                "reload failed: the config is invalid, the current one stays",
                level=logging.WARNING,
                problems=list(exc.problems),
            )
            raise
        if self.limits is None or tables.limits != old.tables.limits:
            self.limits = backend_of(tables)  # the old one closes with the runtime that used it
        if tables.cache != old.tables.cache:
            self.cache = cache_of(tables.cache)  # (the old one closes with the old runtime)
        runtime = Runtime(tables, previous=old, clock=self.clock, limits=self.limits, cache=self.cache)
        summary = changes(old.tables, tables)
        self._swap(runtime)
        logs.setup(tables.logging.level, tables.logging.format, self.output)
        logs.event("config reloaded", pid=os.getpid(), config=tables.source, **summary)
        if announce:
            self._announce()
        return summary

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        if self.checker is not None:
            self.checker.stop()
            self.checker = None
        runtime, self.runtime = self.runtime, None
        if runtime is not None:
            await runtime.aclose()
        limits, self.limits = self.limits, None
        if limits is not None:
            await limits.aclose()  # the Redis pool, if any
        cache, self.cache = self.cache, None
        if cache is not None:
            await cache.aclose()  # its Redis pool, once the stores under way are done

    def _swap(self, runtime: Runtime) -> None:
        old = self.runtime
        self.runtime = runtime  # the one assignment new requests see
        if self.checker is not None:
            self.checker.stop()
        self.checker = HealthChecker(runtime)
        self.checker.start()
        if old is not None:
            old.retire(runtime)

    # -- telling the other workers

    def _signal_size(self) -> int:
        if self._signal_file is None:
            return 0
        try:
            return os.stat(self._signal_file).st_size
        except OSError:
            return 0

    def _announce(self) -> None:
        if self._signal_file is None:
            return
        try:
            fd = os.open(self._signal_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, b".")  # O_APPEND: concurrent writers never lose a byte
            finally:
                os.close(fd)
        except OSError as exc:
            logs.event("could not tell the other workers to reload", level=logging.WARNING, error=str(exc))
            return
        self._seen = self._signal_size()

    def _poll(self) -> None:
        size = self._signal_size()
        if size != self._seen:
            self._seen = size
            try:
                self.reload(announce=False)
            except ConfigError:
                pass  # logged; the current runtime stays
            except Exception:
                logging.getLogger("gw.worker").exception("reload failed")
        self._poller = asyncio.get_running_loop().call_later(_POLL_S, self._poll)


def changes(old: Tables, new: Tables) -> dict[str, Any]:
    """What a reload changed, by name (never a key)."""
    before, after = old.providers, new.providers
    summary: dict[str, Any] = {
        "models": sorted(new.models),
        "providers": {
            "added": sorted(set(after) - set(before)),
            "removed": sorted(set(before) - set(after)),
            "changed": sorted(n for n in after if n in before and after[n] != before[n]),
            "kept": sorted(n for n in after if n in before and after[n] == before[n]),
        },
    }
    if new.server != old.server or new.metrics != old.metrics:
        summary["restart_needed"] = "server and metrics settings take effect after a restart"
    return summary
