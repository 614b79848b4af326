"""gw.worker: a reload announced while a worker starts still reaches it."""

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
