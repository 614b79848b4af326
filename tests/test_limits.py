"""gw.limits in process, on the memory backend: reservations and their settlement."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gw.config import load_tables
from gw.context import Outcome
from gw.limits import Limits, MemoryBackend

CONFIG = """
providers:
  a: {type: echo, rate_limit: {tpm: 1000}}
  b: {type: echo, rate_limit: {tpm: 1000}}
models:
  m: {targets: [{provider: a, model: echo}, {provider: b, model: echo}]}
"""


def test_a_reservation_on_a_target_that_did_not_answer_goes_back_and_the_answering_one_pays(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    tables = load_tables(config, environ={}, dotenv=None)
    limits = Limits(tables, MemoryBackend(None))
    a, b = tables.providers["a"], tables.providers["b"]
    body = {"model": "m", "messages": [], "max_tokens": 900}

    async def run() -> None:
        held = await limits.admit(None, body, Outcome())
        assert await limits.target(a, held, body) == (0.0, "")  # reserves ~910 on a: a tried and failed
        assert await limits.target(b, held, body) == (0.0, "")  # ... b answered
        assert (await limits.target(a, held, body))[0] > 0  # a's bucket is spent for now
        await limits.settle(held, {"total_tokens": 50}, b)
        # a got its reservation back; b keeps what it used (50), not what it reserved
        again = await limits.admit(None, body, Outcome())
        assert await limits.target(a, again, body) == (0.0, "")
        assert await limits.target(b, again, body) == (0.0, "")

    asyncio.run(run())
