"""Step 10 of loadtests.bench: what gw's governance costs, in one run. One gw worker proxying
the fake upstream, per setting, against a key without limits ("plain") in the same gw:

- memory: a key with every limit on and never refusing (rpm, tpm, max_concurrent,
  budget_usd on a priced model) on ``limits.backend: memory``
- redis: the same key on ``limits.backend: redis`` (a real redis-server, tests/redis_server.py)
- cache: ``cache.backend: memory``, the same request again and again: every one a hit
  after the first, against the memory setting's plain row (cache off)

    python -m loadtests.governance_bench [--rounds 2] [--duration 8] [--warmup 2]

Layout as in loadtests.bench: gw on core 0; the fake upstream, wrk and redis-server
(what a deployment has on other machines) on core 1. Settings run one after the
other, in alternating order each round; the medians are kept. Needs wrk and
redis-server (the Redis row is skipped, and says so, without it); only 127.0.0.1
is contacted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from loadtests.run_locust import GW_KEY

LIMITED = "bench-limited-key-0123456789abcdef"
# Issue 12's targets: the limits' cost in req/s against the plain key; a hit against the proxy.
TARGET_MEMORY_COST = 0.05
TARGET_REDIS_COST = 0.25
# the rows measured in a setting's gw: limits settings, then the cache setting
KEYS = ({"plain": GW_KEY, "limited": LIMITED}, {"hit": GW_KEY})


def config(upstream: str, setting: str, redis_url: str | None) -> str:
    limits = f'limits: {{backend: redis, redis_url: "{redis_url}"}}\n' if setting == "redis" else ""
    cache = "cache: {backend: memory}\n" if setting == "cache" else ""
    never = "rate_limit: {rpm: 100000000, tpm: 100000000000}, max_concurrent: 100000, " \
            "budget_usd: {amount: 1000000000, period: month}"  # fmt: skip
    return f"""auth:
  keys:
    - {{name: plain, key: {GW_KEY}, models: ["*"]}}
    - {{name: limited, key: {LIMITED}, models: ["*"], {never}}}
providers:
  up: {{type: openai, base_url: {upstream}/v1, max_connections: 2048}}
models:
  fake-gpt:
    targets: [{{provider: up, model: gpt-4o-mini}}]
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
logging: {{level: warning}}
{limits}{cache}"""


def cache_answers(base: str) -> list[str]:
    """Two identical requests through the cache setting's gw: their x-gw-cache headers."""
    import httpx

    body = {"model": "fake-gpt", "messages": [{"role": "user", "content": "cache check"}]}
    headers = {"authorization": f"Bearer {GW_KEY}"}
    return [httpx.post(base + "/v1/chat/completions", json=body, headers=headers, timeout=10)
            .headers.get("x-gw-cache", "none") for _ in range(2)]  # fmt: skip


def governance_rows(args: argparse.Namespace, workdir: Path, log: list[str]) -> dict:
    """Req/s @32c of each setting's rows, each the median of ``args.governance_rounds``."""
    from loadtests.bench import CHAT_PATH, HI, LUA_CHAT, SERVER_CPU, SIDE_CPU, Server, wrk_point
    from tests.fakes.runner import FakeUpstream
    from tests.redis_server import RedisServer

    settings = ["memory", "redis", "cache"]
    redis = RedisServer() if shutil.which("redis-server") else None
    if redis is None:
        settings.remove("redis")
    elif redis.process is not None:  # on the other side of the network: off gw's core
        os.sched_setaffinity(redis.process.pid, {int(SIDE_CPU)})
    runs: dict[str, dict[str, list[float]]] = {s: {} for s in settings}
    errors = 0
    checks: list[str] = []
    try:
        with FakeUpstream(cpu=SIDE_CPU) as up:
            for round_ in range(args.governance_rounds):
                for setting in settings if round_ % 2 == 0 else list(reversed(settings)):
                    text = config(up.url.rstrip("/"), setting, redis.url if redis else None)
                    with Server("gw", workdir, config_text=text) as s:
                        keys = KEYS[setting == "cache"]
                        if setting == "cache" and not checks:
                            checks = cache_answers(s.base)
                        for name, key in keys.items():
                            os.environ["BENCH_KEY"] = key
                            point = wrk_point(s.base + CHAT_PATH, HI, LUA_CHAT, args, log)
                            runs[setting].setdefault(name, []).append(point["rps"])
                            errors += point["errors"]
        os.sched_setaffinity(0, {int(SERVER_CPU)})  # the limits' own cost, on gw's core
        try:
            inprocess = inprocess_costs(redis.url if redis else None)
        finally:
            os.sched_setaffinity(0, {int(SIDE_CPU)})
    finally:
        os.environ["BENCH_KEY"] = GW_KEY
        if redis is not None:
            redis.close()
    rows = {s: {name: statistics.median(v) for name, v in r.items()} for s, r in runs.items()}
    return {"rows": rows, "rounds": runs, "errors": errors, "cache_check": checks,
            "redis": redis is not None, "inprocess": inprocess}  # fmt: skip


def inprocess_costs(redis_url: str | None, requests: int = 20_000) -> dict[str, dict[str, float]]:
    """CPU per request of gw.limits alone (no HTTP): admit, then settle, for 32 requests at
    a time in one uvloop, per backend and set of limits. What the end-to-end rows cannot
    resolve on a machine whose rounds differ by 15%."""
    import asyncio
    import time
    import types

    import uvloop

    from gw.config.tables import ApiKey, Budget, RateLimit
    from gw.context import Outcome
    from gw.limits import Backend, Limits, MemoryBackend, RedisBackend

    both = RateLimit(rpm=10**8, tpm=10**11)
    kinds = {
        "rpm": {"rate_limit": RateLimit(rpm=10**8)},
        "rpm + tpm": {"rate_limit": both},
        "all four": {"rate_limit": both, "max_concurrent": 10**6, "budget": Budget(1e9)},
    }
    tables = types.SimpleNamespace(
        limits=types.SimpleNamespace(on_redis_error="open"),
        providers={},
        auth=types.SimpleNamespace(keys_by_digest={}),
    )
    body = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 32}

    async def cost(backend: Backend, caller: ApiKey) -> float:
        limits = Limits(tables, backend)  # type: ignore[arg-type]
        each = requests // 32

        async def one_connection() -> None:
            for _ in range(each):
                outcome = Outcome()
                await limits.admit(caller, body, outcome)
                await asyncio.sleep(0)  # the upstream
                outcome.usage = {"total_tokens": 40}
                limits.settle(outcome)

        started = time.process_time()
        await asyncio.gather(*(one_connection() for _ in range(32)))
        used = time.process_time() - started
        await backend.aclose()
        return 1e6 * used / (each * 32)

    out: dict[str, dict[str, float]] = {"memory": {}, "redis": {}}
    for name, limits in kinds.items():
        caller = ApiKey("bench", "k" * 20, **limits)  # type: ignore[arg-type]
        out["memory"][name] = uvloop.run(cost(MemoryBackend(None), caller))
        if redis_url is not None:
            out["redis"][name] = uvloop.run(cost(RedisBackend(redis_url), caller))
    return out


def governance_targets(G: dict) -> list[tuple[str, str, bool]]:
    rows = G["rows"]
    out = []
    for setting, target in (("memory", TARGET_MEMORY_COST), ("redis", TARGET_REDIS_COST)):
        if setting in rows:
            cost = 1 - rows[setting]["limited"] / rows[setting]["plain"]
            out.append((f"{setting} limits cost <= {100 * target:g}% of req/s", f"{100 * cost:.1f}%",
                        cost <= target))  # fmt: skip
    speedup = rows["cache"]["hit"] / rows["memory"]["plain"]
    out.append(("a cache hit is faster than the plain proxy path", f"{speedup:.2f}x", speedup > 1))
    return out


def governance_report(G: dict, args: argparse.Namespace) -> str:
    rows, rounds = G["rows"], G["rounds"]
    plain = rows["memory"]["plain"]
    L = [f"### Governance: limits and cache (32 connections; req/s, median of {args.governance_rounds} "
         "rounds; the rounds in brackets)\n",
         "| setting | row | req/s | of its plain row |", "|---|---|---:|---:|"]  # fmt: skip
    for setting, by_name in rows.items():
        base = by_name.get("plain", plain)
        for name, rps in by_name.items():
            each = " / ".join(f"{x:,.0f}" for x in rounds[setting][name])
            L.append(f"| {setting} | {name} | {rps:,.0f} ({each}) | {100 * rps / base:.1f}% |")
    if not G["redis"]:
        L.append("\nredis-server not found: the Redis row was not measured.")
    L.append("\nCPU per request of gw.limits alone (admit + settle, 32 at a time, no HTTP; µs):\n")
    L.append("| backend | " + " | ".join(G["inprocess"]["memory"]) + " |")
    L.append("|---|" + "---:|" * len(G["inprocess"]["memory"]))
    for backend, costs in G["inprocess"].items():
        if costs:
            L.append(f"| {backend} | " + " | ".join(f"{c:.0f}" for c in costs.values()) + " |")
    L.append(f"\nThe cache setting's two first answers: x-gw-cache {' then '.join(G['cache_check'])}. "
             f"wrk non-2xx + socket errors: {G['errors']}.\n")
    return "\n".join(L)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--governance-rounds", type=int, default=2)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=2.0)
    args = p.parse_args(argv)
    os.sched_setaffinity(0, {1})
    os.environ["BENCH_MODEL"] = "fake-gpt"
    workdir = Path(tempfile.mkdtemp(prefix="gw-governance-"))
    try:
        G = governance_rows(args, workdir, [])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(governance_report(G, args))
    for name, value, ok in governance_targets(G):
        print(f"- {name}: {value} {'PASS' if ok else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
