"""gw.worker: a reload announced while a worker starts still reaches it; the cache and the limits store across reloads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gw.config import load_tables
from gw.worker import Worker

CONFIG = """
providers:
  demo: {{type: echo}}
models:
  {name}: {{targets: [{{provider: demo, model: echo}}]}}
"""


async def until_model(worker: Worker, name: str, timeout: float = 3.0) -> None:
    """Poll (the worker looks at its signal file every 0.5 s) until ``name`` is served."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while worker.runtime is None or name not in worker.runtime.routes:
        assert loop.time() < deadline, f"{name} not served within {timeout}s"
        await asyncio.sleep(0.05)


def test_a_reload_announced_between_reading_the_config_and_starting_is_not_missed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signal_file = tmp_path / "reload"
    signal_file.touch()
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(name="old"))
    monkeypatch.setenv("GW_RELOAD_FILE", str(signal_file))

    worker = Worker(str(config))  # as gw.app does: before the config is read
    tables = load_tables(config, dotenv=None)
    # another worker reloads a new config and announces it before this one starts
    config.write_text(CONFIG.format(name="new"))
    with open(signal_file, "ab") as f:
        f.write(b".")

    async def run() -> None:
        runtime = worker.start(tables)
        assert "old" in runtime.routes
        try:
            await until_model(worker, "new")
        finally:
            await worker.stop()

    asyncio.run(run())


CACHED = CONFIG + "cache: {{backend: memory, ttl_s: {ttl}}}\n"


def test_a_reload_keeps_the_cache_unless_its_section_changed(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CACHED.format(name="one", ttl=60))
    worker = Worker(str(config))

    async def run() -> None:
        first = worker.start(load_tables(config, dotenv=None))
        cache = worker.cache
        assert cache is not None and first.cache is cache
        cache.store.put("k", b"v")
        try:
            config.write_text(CACHED.format(name="two", ttl=60))  # models changed, cache alone
            worker.reload(announce=False)
            assert worker.runtime is not None and worker.runtime.cache is cache
            assert await cache.store.get("k") == b"v"

            config.write_text(CACHED.format(name="two", ttl=30))
            worker.reload(announce=False)
            assert worker.runtime.cache is worker.cache and worker.cache is not cache
            assert worker.cache.config.ttl_s == 30
            await asyncio.sleep(0.01)  # the old runtime was idle: its cache closed in a task
            assert await cache.store.get("k") is None

            config.write_text(CONFIG.format(name="two"))
            worker.reload(announce=False)
            assert worker.cache is None and worker.runtime.cache is None
        finally:
            await worker.stop()

    asyncio.run(run())


LIMITED = CONFIG + """auth:
  keys: [{{key: a-long-enough-secret-key, name: k, rate_limit: {{rpm: 5}}}}]
limits: {limits}
"""


def test_a_limits_store_a_reload_replaces_is_closed_once_its_runtime_is_idle(tmp_path: Path, redis_url) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(LIMITED.format(name="one", limits=f'{{backend: redis, redis_url: "{redis_url}"}}'))
    worker = Worker(str(config))

    async def run() -> None:
        worker.start(load_tables(config, dotenv=None))
        old = worker.limits
        assert old is not None
        closed: list[bool] = []
        close = old.aclose

        async def spy() -> None:
            closed.append(True)
            await close()

        old.aclose = spy  # type: ignore[method-assign]
        try:
            config.write_text(LIMITED.format(name="two", limits=f'{{backend: redis, redis_url: "{redis_url}"}}'))
            worker.reload(announce=False)
            assert worker.limits is old  # limits: unchanged, the store is kept
            config.write_text(LIMITED.format(name="two", limits="{backend: memory}"))
            worker.reload(announce=False)
            assert worker.limits is not old
            await asyncio.sleep(0.01)  # the old runtime was idle: its store closed in a task
            assert closed == [True]
        finally:
            await worker.stop()

    asyncio.run(run())
