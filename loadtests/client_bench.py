"""Benchmark HTTP client candidates behind a minimal BlackSheep/Granian proxy.

    python -m loadtests.client_bench [--duration 8] [--connections 1,32] \
        [--clients aiohttp,aiohttp_lean,pyreqwest,rnet,blacksheep] [--repeat 1] [--json out.json]

Layout (2 cores): fake upstream pinned to core 1, proxy (Granian, 1 worker, uvloop)
pinned to core 0, wrk pinned to core 1.  Reference rows: the fake upstream called
directly (wrk and upstream share core 1 -> this is also the ceiling the upstream side
can deliver during the proxy runs) and the no-op BlackSheep app (ceiling of our stack).
With --repeat N every target is measured N times in interleaved rounds and medians
are reported.  Only 127.0.0.1 is ever contacted; every wrk run is bounded by -d.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from loadtests import _procs

ROOT = Path(__file__).resolve().parent.parent
LUA_CHAT = str(ROOT / "loadtests/wrk/post_chat.lua")
LUA_STREAM = str(ROOT / "loadtests/wrk/post_stream.lua")
PROXY_CPU = "0"
WRK_CPU = "1"
UPSTREAM_CPU = "1"
CHAT_PATH = "/v1/chat/completions"

CHAT_BODY = json.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
).encode()
STREAM_BODY = json.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],
     "stream": True, "fake": {"chunks": 20}}
).encode()


# --------------------------------------------------------------------------- upstream
@contextlib.contextmanager
def upstream():
    """The shared fake upstream (tests/fakes/runner.py), pinned to core 1."""
    from tests.fakes.runner import FakeUpstream

    with FakeUpstream(cpu=UPSTREAM_CPU) as up:
        yield up.url.rstrip("/"), "tests.fakes FakeUpstream"


# --------------------------------------------------------------------------- servers
def granian(target: str, env: dict[str, str] | None = None):
    port = _procs.free_port()
    argv = [
        str(Path(_procs.PY).with_name("granian")), "--interface", "asgi", "--loop", "uvloop",
        "--workers", "1", "--no-ws", "--http", "1", "--host", "127.0.0.1",
        "--port", str(port), "--log-level", "warning", "--no-access-log", target,
    ]
    proc = _procs.start(argv, cpu=PROXY_CPU, env=env, cwd=str(ROOT))
    return proc, port


@contextlib.contextmanager
def served(target: str, env: dict[str, str] | None, check_path: str, check_body: bytes):
    proc, port = granian(target, env)
    try:
        _procs.wait_port(port, proc=proc, timeout=20)
        _procs.wait_http_ok(
            f"http://127.0.0.1:{port}{check_path}", method="POST", body=check_body,
            headers={"content-type": "application/json"}, proc=proc, timeout=20,
        )
        yield proc, port
    finally:
        _procs.terminate(proc)


# --------------------------------------------------------------------------- wrk
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    return float(m.group(1)) * _UNIT[m.group(2)] if m else float("nan")


def parse_wrk(out: str) -> dict:
    res: dict = {"rps": 0.0, "p50": float("nan"), "p99": float("nan"), "errors": 0, "requests": 0}
    if m := re.search(r"Requests/sec:\s*([\d.]+)", out):
        res["rps"] = float(m.group(1))
    if m := re.search(r"(\d+) requests in", out):
        res["requests"] = int(m.group(1))
    for pct in ("50", "99"):
        if m := re.search(rf"^\s*{pct}(?:\.000)?%\s+(\S+)", out, re.M):
            res[f"p{pct}"] = _ms(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out):
        res["errors"] += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        res["errors"] += sum(int(x) for x in m.groups())
    return res


def wrk(url: str, conns: int, duration: float, lua: str) -> dict:
    argv = ["taskset", "-c", WRK_CPU, "wrk", "-t1", f"-c{conns}", f"-d{duration:g}s",
            "--timeout", "5s", "--latency", "-s", lua, url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30).stdout
    res = parse_wrk(out)
    res["raw"] = out
    return res


# --------------------------------------------------------------------------- measurement
def check_stream(port: int, path: str) -> str:
    """One streamed request through the target: count SSE data lines."""
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", path, body=STREAM_BODY, headers={"content-type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    n = data.count(b"data:")
    return f"status={r.status} data_lines={n} bytes={len(data)}"


def measure(port: int, chat_path: str, stream_path: str | None, args) -> dict:
    base = f"http://127.0.0.1:{port}"
    hi = max(args.connections)
    lo = min(args.connections)
    wrk(base + chat_path, hi, args.warmup, LUA_CHAT)  # warm pool/JIT-ish caches
    r_hi = wrk(base + chat_path, hi, args.duration, LUA_CHAT)
    r_lo = wrk(base + chat_path, lo, args.duration, LUA_CHAT)
    r_st = None
    if stream_path:
        r_st = wrk(base + stream_path, args.stream_connections, args.duration, LUA_STREAM)
    return {
        "rps_hi": r_hi["rps"], "p99_hi": r_hi["p99"], "p50_hi": r_hi["p50"],
        "rps_lo": r_lo["rps"], "p50_lo": r_lo["p50"],
        "stream_rps": r_st["rps"] if r_st else float("nan"),
        "stream_p50": r_st["p50"] if r_st else float("nan"),
        "errors": r_hi["errors"] + r_lo["errors"] + (r_st["errors"] if r_st else 0),
    }


def run_target(name: str, up_url: str, args) -> dict:
    if name == "upstream":
        port = int(up_url.rsplit(":", 1)[1])
        return measure(port, CHAT_PATH, CHAT_PATH, args)
    if name == "noop":
        with served("loadtests.noop_app:app", None, CHAT_PATH, CHAT_BODY) as (_, port):
            return measure(port, CHAT_PATH, None, args)
    env = {"GW_BENCH_CLIENT": name, "UPSTREAM_URL": up_url}
    with served("loadtests.clients.proxies:app", env, CHAT_PATH, CHAT_BODY) as (_, port):
        info = check_stream(port, "/stream")
        if args.verbose:
            print(f"  [{name}] stream check: {info}", file=sys.stderr)
        return measure(port, CHAT_PATH, "/stream", args)


def fmt(x: float, nd: int = 0) -> str:
    return "n/a" if x != x else f"{x:,.{nd}f}"


def table(results: dict[str, list[dict]], args) -> str:
    hi, lo, sc = max(args.connections), min(args.connections), args.stream_connections
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in results.items()}
    noop = med.get("noop", {}).get("rps_hi", float("nan"))
    lines = [
        f"| client | req/s @{hi}c | p50 @{lo}c (ms) | p99 @{hi}c (ms) | errors | req/s as % of no-op "
        f"| stream completions/s @{sc}c (20 chunks) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for k, m in med.items():
        label = {"upstream": "upstream direct (ref)", "noop": "no-op app (ref)"}.get(k, k)
        pct = 100.0 * m["rps_hi"] / noop if noop == noop and noop else float("nan")
        errs = sum(r["errors"] for r in results[k])
        lines.append(
            f"| {label} | {fmt(m['rps_hi'])} | {fmt(m['p50_lo'], 2)} | {fmt(m['p99_hi'], 2)} "
            f"| {errs} | {fmt(pct, 1)}% | {fmt(m['stream_rps'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--connections", default="1,32")
    p.add_argument("--stream-connections", type=int, default=32)
    p.add_argument("--clients", default="aiohttp,aiohttp_lean,pyreqwest,rnet,blacksheep",
                   help="names from loadtests.clients.proxies.CLIENTS")
    p.add_argument("--no-refs", action="store_true", help="skip upstream/no-op reference rows")
    p.add_argument("--repeat", type=int, default=1, help="interleaved rounds; medians reported")
    p.add_argument("--json", help="write raw per-round results here")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    args.connections = [int(x) for x in args.connections.split(",")]
    clients = [c for c in args.clients.split(",") if c]
    if "httpx_aiohttp" in clients:
        try:
            import httpx_aiohttp  # noqa: F401
        except ImportError:
            print("httpx_aiohttp not installed; skipping", file=sys.stderr)
            clients.remove("httpx_aiohttp")
    targets = ([] if args.no_refs else ["upstream", "noop"]) + clients
    results: dict[str, list[dict]] = {t: [] for t in targets}
    os.chdir(ROOT)
    with upstream() as (up_url, up_desc):
        print(f"upstream: {up_desc} at {up_url}", file=sys.stderr)
        for rnd in range(args.repeat):
            for t in targets:
                t0 = time.monotonic()
                r = run_target(t, up_url, args)
                results[t].append(r)
                print(f"round {rnd + 1} {t}: " + ", ".join(f"{k}={fmt(v, 2)}" for k, v in r.items())
                      + f" ({time.monotonic() - t0:.0f}s)", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"\nduration {args.duration:g}s per point, {args.repeat} round(s), medians; "
          f"proxy on core {PROXY_CPU}, upstream+wrk on core {UPSTREAM_CPU}; upstream: {up_desc}\n")
    print(table(results, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
