"""Active health checks: every ``routing.health_check.interval_s``, one cheap request per provider.

    checker = HealthChecker(runtime)   # one per runtime; a reload starts a new one
    checker.start()
    ...
    checker.stop()

Each enabled provider gets its adapter's ``probe()`` (a models list; nothing
for echo), bounded by its ``first_byte_timeout_s``. The result goes to every
breaker of that provider (``Breaker.probed``): failed probes eject its targets
without any client traffic, and a good probe after the cooldown closes them.
"""

from __future__ import annotations

import asyncio
import time

from .errors import UpstreamError
from .runtime import Runtime


class HealthChecker:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.interval_s = runtime.tables.routing.health_check_interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check()

    async def check(self) -> None:
        """Probe every enabled provider once, concurrently."""
        runtime = self.runtime
        await asyncio.gather(*(self._probe(name) for name in runtime.adapters))

    async def _probe(self, name: str) -> None:
        runtime = self.runtime
        error: str | None = None
        try:
            await runtime.adapters[name].probe()
        except UpstreamError as exc:
            error = exc.message
        except Exception as exc:  # a probe must never end the checker
            error = f"health probe failed: {type(exc).__name__}"
        health = runtime.health.providers[name]
        if error is None:
            health.failures = 0
        else:
            health.failures += 1
            health.last_error = error
        now = time.monotonic()
        for breaker in list(health.breakers):
            breaker.probed(error, now)
