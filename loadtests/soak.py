"""A fault-injection soak: gw over two OpenAI fakes, one of them flapping.

    python -m loadtests.soak [--duration 120] [--clients 16] [--flap-s 5]
        [--workers 1] [--seed 0] [--out loadtests/results/soak.json]

Processes: fake A and fake B (``tests.fakes.openai_server``) and one ``gw
serve`` with the models

    flappy   two targets, equal weights: provider a -> fake A, provider b -> fake B
    steady   one target on fake B
    echo     gw's built-in echo backend

and ``routing: {retries: 2, circuit_breaker: {failures: 3, cooldown_s: 2},
health_check: {interval_s: 1}}``; each fake provider has connect 1 s, first
byte 2 s, idle 2 s and total 10 s timeouts.

For ``--duration`` seconds, ``--clients`` async httpx clients send a mix of
small requests: ~40% non-streaming chat on flappy, ~30% streaming chat on
flappy (the whole SSE stream is read: it must end with ``data: [DONE]`` and
hold no ``"error"`` event), ~20% steady (half of them streamed), ~10% echo.
Meanwhile a flapper toggles fake A every ``--flap-s`` seconds between healthy
and failing, through A's process-wide mode (``POST /_fake/mode``), cycling
through ``{"status": 503}``, ``{"fault": "reset_before_headers"}``,
``{"status": 429, "retry_after": "1"}`` and ``{"fault": "hang"}`` (a hang is
cut by gw's first-byte timeout).

A failure is a non-200 answer, a broken or unfinished stream, an error event,
a body that is not a completion, or a client exception (30 s client timeout).
Prints per model the requests, failures (with the first examples),
p50/p99 latency; per phase how many requests fake A saw; each fake's request
count; the sums of gw's ``gw_retries_total`` and ``gw_upstream_errors_total``.
Writes the same as JSON to ``--out``. Exits 1 if any request failed for a
model that always had a healthy target (all three here), 2 if a process did
not start. Only 127.0.0.1 is contacted; every process is stopped at the end.
Not part of CI: it is CPU heavy (``make soak``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from loadtests import _procs
from loadtests.run_locust import FAKE_KEY, GW_KEY, gw_argv

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "loadtests" / "results" / "soak.json"
CLIENT_TIMEOUT_S = 30.0
EXAMPLES = 5  # failures kept per model, with their details

# What fake A does while it fails, in turn (its /_fake/mode body).
FAILURES: tuple[dict[str, Any], ...] = (
    {"status": 503},
    {"fault": "reset_before_headers"},
    {"status": 429, "retry_after": "1"},
    {"fault": "hang"},
)


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of request of the mix."""

    name: str
    model: str
    stream: bool
    share: float


MIX = (
    Kind("flappy", "flappy", False, 0.40),
    Kind("flappy/stream", "flappy", True, 0.30),
    Kind("steady", "steady", False, 0.10),
    Kind("steady/stream", "steady", True, 0.10),
    Kind("echo", "echo", False, 0.10),
)
MODELS = ("flappy", "steady", "echo")
ALWAYS_HEALTHY = frozenset(MODELS)  # each has a target that never fails


def gw_config(a_url: str, b_url: str) -> str:
    """gw's config: ``flappy`` on fakes A and B, ``steady`` on B, ``echo`` built in."""
    limits = "timeout_s: 10, connect_timeout_s: 1, first_byte_timeout_s: 2, idle_timeout_s: 2"
    return f"""auth:
  keys:
    - {{name: soak, key: {GW_KEY}, models: ["*"]}}
providers:
  a: {{type: openai, base_url: {a_url}, api_key: {FAKE_KEY}, {limits}}}
  b: {{type: openai, base_url: {b_url}, api_key: {FAKE_KEY}, {limits}}}
  demo: {{type: echo}}
models:
  flappy:
    targets: [{{provider: a, model: gpt-4o-mini, weight: 1}}, {{provider: b, model: gpt-4o-mini, weight: 1}}]
  steady:
    targets: [{{provider: b, model: gpt-4o-mini}}]
  echo:
    targets: [{{provider: demo, model: echo}}]
routing:
  retries: 2
  circuit_breaker: {{failures: 3, cooldown_s: 2}}
  health_check: {{interval_s: 1}}
logging: {{level: warning}}
"""


# --------------------------------------------------------------------------- tallies


@dataclass(slots=True)
class Tally:
    """What one model's requests did."""

    requests: int = 0
    failures: int = 0
    latencies: list[float] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)
    by_kind: Counter[str] = field(default_factory=Counter)
    failed_by_kind: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, seconds: float, problem: str | None, at: float, phase: str) -> None:
        self.requests += 1
        self.by_kind[kind] += 1
        self.latencies.append(seconds)
        if problem is None:
            return
        self.failures += 1
        self.failed_by_kind[kind] += 1
        self.reasons[problem.split(":", 1)[0]] += 1
        if len(self.examples) < EXAMPLES:
            example = {"kind": kind, "at_s": round(at, 3), "phase": phase, "problem": problem[:500]}
            self.examples.append(example)

    def summary(self, seconds: float) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "rps": self.requests / seconds if seconds > 0 else 0.0,
            "p50_ms": percentile(self.latencies, 0.50) * 1000,
            "p99_ms": percentile(self.latencies, 0.99) * 1000,
            "max_ms": max(self.latencies, default=float("nan")) * 1000,
            "by_kind": dict(self.by_kind),
            "failed_by_kind": dict(self.failed_by_kind),
            "reasons": dict(self.reasons),
            "examples": self.examples,
        }


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile; nan when there is nothing."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# --------------------------------------------------------------------------- requests


def chat_body(model: str, stream: bool, n: int) -> dict[str, Any]:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": f"soak {n}"}]}


async def plain(http: httpx.AsyncClient, model: str, n: int) -> str | None:
    """A non-streaming chat; the problem, None when it is a whole completion."""
    r = await http.post("/v1/chat/completions", json=chat_body(model, False, n))
    if r.status_code != 200:
        return f"status {r.status_code}: {r.text[:200]}"
    try:
        content = r.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return f"bad body: {r.text[:200]}"
    if not isinstance(content, str) or not content:
        return f"bad body: {r.text[:200]}"
    return None


async def streamed(http: httpx.AsyncClient, model: str, n: int) -> str | None:
    """A streamed chat read to its end; the problem, None when it ends with ``[DONE]`` and no error."""
    async with http.stream("POST", "/v1/chat/completions", json=chat_body(model, True, n)) as r:
        if r.status_code != 200:
            return f"status {r.status_code}: {(await r.aread())[:200]!r}"
        events: list[str] = []
        data: list[str] = []
        async for line in r.aiter_lines():
            if line == "":
                if data:
                    events.append("\n".join(data))
                data = []
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            events.append("\n".join(data))
    if not events:
        return "empty stream"
    done = events[-1] == "[DONE]"
    for i, event in enumerate(events[:-1] if done else events):
        if event == "[DONE]":
            return f"[DONE] before the end: event {i} of {len(events)}"
        try:
            obj = json.loads(event)
        except ValueError:
            return f"bad event: {event[:200]}"
        if isinstance(obj, dict) and "error" in obj:
            return f"error event: {event[:300]}"
    if not done:
        return f"no [DONE]: {len(events)} events, last {events[-1][:200]}"
    return None


# --------------------------------------------------------------------------- the soak


class Soak:
    def __init__(self, gw_url: str, a_url: str, args: argparse.Namespace) -> None:
        self.gw_url = gw_url
        self.a_url = a_url
        self.args = args
        self.tallies = {m: Tally() for m in MODELS}
        self.phase = "healthy"
        self.phases: list[dict[str, Any]] = []
        self.t0 = 0.0

    async def client(self, http: httpx.AsyncClient, rng: random.Random, deadline: float) -> None:
        kinds = list(MIX)
        shares = [k.share for k in MIX]
        n = 0
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, shares)[0]
            n += 1
            start = time.monotonic()
            phase = self.phase
            try:
                problem = await (streamed if kind.stream else plain)(http, kind.model, n)
            except Exception as exc:  # a failure like the others: counted, the soak goes on
                problem = f"{type(exc).__name__}: {exc}"
            self.tallies[kind.model].add(kind.name, time.monotonic() - start, problem, start - self.t0, phase)

    async def flapper(self, admin: httpx.AsyncClient, deadline: float) -> None:
        """Fake A: healthy, then each failure of ``FAILURES`` in turn, ``--flap-s`` each."""
        i = 0
        failing = False
        seen = (await admin.get("/_fake/stats")).json()["requests"]
        started = self.t0
        while True:
            left = deadline - time.monotonic()
            await asyncio.sleep(max(0.0, min(self.args.flap_s, left)))
            now = time.monotonic()
            count = (await admin.get("/_fake/stats")).json()["requests"]
            self.phases.append({
                "from_s": round(started - self.t0, 3), "to_s": round(now - self.t0, 3),
                "a_mode": self.phase, "a_requests": count - seen,
            })
            seen, started = count, now
            if now >= deadline:
                return
            failing = not failing
            mode: dict[str, Any] = {}
            if failing:
                mode, i = FAILURES[i % len(FAILURES)], i + 1
            (await admin.post("/_fake/mode", json=mode)).raise_for_status()
            self.phase = json.dumps(mode, separators=(",", ":")) if failing else "healthy"

    async def run(self) -> float:
        args = self.args
        limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
        headers = {"authorization": f"Bearer {GW_KEY}"}
        async with (
            httpx.AsyncClient(
                base_url=self.gw_url, headers=headers, limits=limits, timeout=CLIENT_TIMEOUT_S
            ) as http,
            httpx.AsyncClient(base_url=self.a_url, timeout=5.0) as admin,
        ):
            self.t0 = time.monotonic()
            deadline = self.t0 + args.duration
            flapper = asyncio.create_task(self.flapper(admin, deadline))
            rng = random.Random(args.seed)
            clients = [asyncio.create_task(self.client(http, random.Random(rng.random()), deadline))
                       for _ in range(args.clients)]
            try:
                await asyncio.gather(flapper, *clients)
            finally:
                for task in (flapper, *clients):
                    task.cancel()
                await asyncio.gather(flapper, *clients, return_exceptions=True)
                try:
                    await admin.post("/_fake/mode", json={})
                except httpx.HTTPError:
                    pass
            return time.monotonic() - self.t0


# --------------------------------------------------------------------------- gw's metrics


def metric_sums(text: str, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """``{name: {"total": sum, "<labels>": value, ...}}`` of counters in a Prometheus exposition."""
    out: dict[str, dict[str, float]] = {n: {"total": 0.0} for n in names}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name, _, labels = series.partition("{")
        if name not in out:
            continue
        out[name]["total"] += float(value)
        out[name][labels.rstrip("}") or "-"] = float(value)
    return out


# --------------------------------------------------------------------------- report


def report(result: dict[str, Any]) -> str:
    lines = ["| model | requests | failures | req/s | p50 (ms) | p99 (ms) | max (ms) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for model, s in result["models"].items():
        lines.append(f"| {model} | {s['requests']} | {s['failures']} | {s['rps']:.0f} "
                     f"| {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | {s['max_ms']:.0f} |")
    lines += ["", "| from (s) | to (s) | fake A mode | requests fake A saw |", "|---:|---:|---|---:|"]
    for p in result["phases"]:
        lines.append(f"| {p['from_s']:.1f} | {p['to_s']:.1f} | {p['a_mode']} | {p['a_requests']} |")
    fakes = result["fakes"]
    metrics = result["gw_metrics"]
    lines += [
        "",
        f"fake A: {fakes['a']['requests']} requests, fake B: {fakes['b']['requests']} requests",
        f"gw_retries_total: {metrics['gw_retries_total']['total']:.0f}",
        f"gw_upstream_errors_total: {metrics['gw_upstream_errors_total']['total']:.0f}",
    ]
    for labels, value in metrics["gw_upstream_errors_total"].items():
        if labels != "total":
            lines.append(f"    {labels}: {value:.0f}")
    for model, s in result["models"].items():
        for e in s["examples"]:
            lines.append(f"failure {model} {e['kind']} at {e['at_s']:.1f}s (A: {e['phase']}): {e['problem']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    p.add_argument("--clients", type=int, default=16, help="concurrent clients")
    p.add_argument("--flap-s", type=float, default=5.0, help="seconds fake A stays healthy, then failing")
    p.add_argument("--workers", type=int, default=1, help="gw's Granian workers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON result")
    p.add_argument("--keep", action="store_true", help="keep the work directory (config, gw log)")
    args = p.parse_args(argv)
    if args.duration <= 0 or args.clients < 1 or args.flap_s <= 0:
        p.error("--duration, --clients and --flap-s must be positive")

    from tests.fakes.runner import FakeUpstream

    workdir = Path(tempfile.mkdtemp(prefix="gw-soak-"))
    gw_log = workdir / "gw.log"
    gw: subprocess.Popen | None = None
    ok = False
    try:
        with ExitStack() as stack:
            fake_a = stack.enter_context(FakeUpstream(api_key=FAKE_KEY))
            fake_b = stack.enter_context(FakeUpstream(api_key=FAKE_KEY))
            config = workdir / "gw.yaml"
            config.write_text(gw_config(fake_a.openai_base_url, fake_b.openai_base_url))
            port = _procs.free_port()
            with gw_log.open("wb") as out:
                gw = _procs.start(gw_argv(config, port, args.workers), cwd=str(workdir),
                                  env={"PYTHONPATH": str(ROOT)}, stdout=out, stderr=subprocess.STDOUT)
            stack.callback(_procs.terminate, gw, 15)  # before the fakes stop
            gw_url = f"http://127.0.0.1:{port}"
            try:
                _procs.wait_http_ok(f"{gw_url}/ready", proc=gw, timeout=30)
            except (RuntimeError, TimeoutError) as exc:
                tail = gw_log.read_text(errors="replace")[-3000:]
                print(f"gw did not start: {exc}\n{tail}", file=sys.stderr)
                return 2
            print(f"soak: gw {gw_url} ({args.workers} worker(s)), fake A {fake_a.url}, fake B {fake_b.url}; "
                  f"{args.clients} clients for {args.duration:g}s, A flaps every {args.flap_s:g}s",
                  file=sys.stderr)

            soak = Soak(gw_url, fake_a.url, args)
            seconds = asyncio.run(soak.run())
            time.sleep(0.6)  # gw flushes its metrics every 0.25 s
            exposition = httpx.get(f"{gw_url}/metrics", timeout=5.0).text
            result: dict[str, Any] = {
                "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "seconds": seconds,
                "models": {m: soak.tallies[m].summary(seconds) for m in MODELS},
                "phases": soak.phases,
                "fakes": {"a": fake_a.stats(), "b": fake_b.stats()},
                "gw_metrics": metric_sums(exposition, ("gw_retries_total", "gw_upstream_errors_total")),
                "gw_exit": gw.poll(),
            }
        problems = [f"{m}: {s['failures']} of {s['requests']} requests failed"
                    for m, s in result["models"].items() if m in ALWAYS_HEALTHY and s["failures"]]
        if result["gw_exit"] is not None:
            problems.append(f"gw exited with {result['gw_exit']} during the soak")
        if not any(s["requests"] for s in result["models"].values()):
            problems.append("no request was made")
        result["problems"] = problems
        result["ok"] = not problems
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(report(result))
        print(f"\nresult: {args.out}")
        if problems:
            print("FAIL:\n  " + "\n  ".join(problems))
            return 1
        print("OK: no request failed on a model with a healthy target")
        ok = True
        return 0
    finally:
        _procs.terminate(gw, timeout=15)
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work directory kept: {workdir}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
