"""Active health checks: every ``routing.health_check.interval_s``, one cheap request per provider.

    checker = HealthChecker(runtime)   # one per runtime; a reload starts a new one
    checker.start()
    ...
    checker.stop()

Each enabled provider gets its adapter's ``probe()`` (a models list; nothing
for echo), bounded by its ``first_byte_timeout_s``. The result goes to the
provider's own probe count (``ProviderHealth.probed``), apart from its request
breakers: ``unhealthy_after`` failed probes in a row take it down (none of its
targets is picked, without any client traffic), ``healthy_after`` good ones
bring it back. With probes on, ``up`` (``gw_provider_up``, ``/health/detailed``)
follows them; with probes off, it follows the breakers.
"""

from __future__ import annotations

import asyncio
import time

from .errors import UpstreamError
from .runtime import Runtime


class HealthChecker:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        routing = runtime.tables.routing
        self.interval_s = routing.health_check_interval_s
        self._task: asyncio.Task[None] | None = None
        # Before any request runs on this runtime: whether probes decide ``up`` (a reload
        # that turns them off brings back a provider they had taken down).
        for health in runtime.health.providers.values():
            health.watch(
                self.interval_s, routing.health_check_unhealthy_after, routing.health_check_healthy_after
            )

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
            error = f"health probe: {exc.message}"
        except Exception as exc:  # a probe must never end the checker
            error = f"health probe failed: {type(exc).__name__}"
        runtime.health.providers[name].probed(error, time.monotonic())
