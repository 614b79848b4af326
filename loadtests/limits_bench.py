"""What gw's rate limits cost: one gw worker proxying the fake upstream, a key without
limits ("plain") against a key whose limits never refuse, per limits backend.

    python -m loadtests.limits_bench [--rounds 2] [--duration 5]

Layout (2 cores): gw on core 0, the fake upstream and wrk on core 1; redis-server (a
real one, tests/redis_server.py) unpinned. Rounds alternate the two keys. Prints req/s
at 32 connections and the limited key's cost against the plain one. Needs wrk and
redis-server; only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loadtests import _procs
from tests.fakes.runner import FakeUpstream
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
LUA = str(ROOT / "loadtests/wrk/bench_chat.lua")
FREE, LIMITED = "bench-free-key-0123456789abcdef", "bench-limited-key-0123456789abcdef"


def config(upstream: str, backend: str, redis_url: str) -> str:
    limits = f'limits: {{backend: redis, redis_url: "{redis_url}"}}\n' if backend == "redis" else ""
    return f"""auth:
  keys:
    - {{name: free, key: {FREE}, models: ["*"]}}
    - {{name: limited, key: {LIMITED}, models: ["*"], rate_limit: {{rpm: 100000000, tpm: 100000000000}}}}
providers:
  up: {{type: openai, base_url: {upstream}/v1, max_connections: 2048}}
models:
  fake-gpt: {{targets: [{{provider: up, model: gpt-4o-mini}}]}}
logging: {{level: warning}}
{limits}"""


def wrk(port: int, key: str, duration: float) -> tuple[float, int]:
    env = {**os.environ, "BENCH_KEY": key, "BENCH_MODEL": "fake-gpt"}
    argv = ["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{duration:g}s", "-s", LUA,
            f"http://127.0.0.1:{port}/v1/chat/completions"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=duration + 30).stdout
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    return (float(rps.group(1)) if rps else 0.0), (int(bad.group(1)) if bad else 0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--duration", type=float, default=5.0)
    args = p.parse_args(argv)
    redis = RedisServer()
    rows: dict[str, dict[str, list[float]]] = {}
    errors = 0
    try:
        with FakeUpstream(cpu="1") as up, tempfile.TemporaryDirectory() as tmp:
            for backend in ("memory", "redis"):
                path = Path(tmp) / f"{backend}.yaml"
                path.write_text(config(up.url.rstrip("/"), backend, redis.url))
                port = _procs.free_port()
                proc = _procs.start(
                    [sys.executable, "-m", "gw.cli", "serve", "--config", str(path), "--port", str(port)],
                    cpu="0", cwd=str(ROOT), env={"PYTHONPATH": str(ROOT)},
                )  # fmt: skip
                try:
                    _procs.wait_port(port, proc=proc, timeout=30)
                    time.sleep(1)
                    wrk(port, FREE, 1)
                    wrk(port, LIMITED, 1)  # warm-up
                    row = rows[backend] = {"plain": [], "limited": []}
                    for n in range(args.rounds):
                        order = [("plain", FREE), ("limited", LIMITED)]
                        for name, key in order if n % 2 == 0 else reversed(order):
                            rps, bad = wrk(port, key, args.duration)
                            row[name].append(rps)
                            errors += bad
                finally:
                    _procs.terminate(proc)
    finally:
        redis.close()
    print("| backend | plain req/s | limited req/s | cost (median) |\n|---|---:|---:|---:|")
    for backend, row in rows.items():
        plain, limited = statistics.median(row["plain"]), statistics.median(row["limited"])
        print(f"| {backend} | {' / '.join(f'{x:,.0f}' for x in row['plain'])} "
              f"| {' / '.join(f'{x:,.0f}' for x in row['limited'])} | {100 * (1 - limited / plain):.1f}% |")
    print(f"\nnon-2xx answers: {errors}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
