"""Run the Locust scenarios headless against gw in front of the fake upstream.

    python -m loadtests.run_locust [--duration 30] [--users 32]
        [--scenario all|chat|stream|mixed] [--max-p99-ms 250] [--min-rps 300]

Layout (2 cores): gw (one worker) pinned to core 0; the fake upstream and
Locust (one process) on core 1.  ``--scenario all`` (the default) runs chat,
stream and mixed in sequence against the same gw, splitting ``--duration``.
Exits 1, saying why, if any request failed, if a scenario's aggregated p99 is
above ``--max-p99-ms`` or its aggregated req/s below ``--min-rps`` (lenient:
the Python load generator saturates long before gw does), or if a process
could not be started.  Only 127.0.0.1 is contacted; every run is bounded.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loadtests import _procs

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
GW_CPU = "0"
LOAD_CPU = "1"
FAKE_KEY = "sk-fake-upstream-load-0123456789abcdef"
GW_KEY = "gw-load-key-0123456789abcdef"
SCENARIOS = {
    "chat": ["ChatUser"],
    "stream": ["StreamUser"],
    "mixed": ["ChatUser", "StreamUser", "EchoUser"],
}


def gw_config(openai_base_url: str, upstream_key: str | None, *, max_connections: int = 256,
              level: str = "warning", auth: bool = True) -> str:
    """The gw config of the load tests: model ``fake-gpt`` -> the fake, ``echo`` -> built-in."""
    key_line = f"\n    api_key: {upstream_key}" if upstream_key else ""
    auth_block = (
        f"auth:\n  keys:\n    - name: load\n      key: {GW_KEY}\n      models: [\"*\"]\n" if auth else ""
    )
    return f"""{auth_block}providers:
  up:
    type: openai
    base_url: {openai_base_url}{key_line}
    max_connections: {max_connections}
  demo:
    type: echo
models:
  fake-gpt:
    targets: [{{provider: up, model: gpt-4o-mini}}]
  echo:
    targets: [{{provider: demo, model: echo}}]
logging: {{level: {level}}}
"""


def gw_argv(config: Path, port: int, workers: int = 1) -> list[str]:
    return [_procs.PY, "-m", "gw.cli", "serve", "--config", str(config),
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]


def _csv_path(prefix: Path, kind: str) -> Path:
    """The final CSV the locustfile writes at quit, else Locust's periodic (stale) one."""
    final = Path(f"{prefix}_final_{kind}.csv")
    return final if final.exists() else Path(f"{prefix}_{kind}.csv")


def read_stats(prefix: Path) -> dict[str, dict[str, str]]:
    path = _csv_path(prefix, "stats")
    if "_final_" not in path.name:
        print(f"warning: {path.name}: Locust's periodic CSV (may miss the last second)", file=sys.stderr)
    with path.open(newline="") as f:
        return {row["Name"]: row for row in csv.DictReader(f)}


def read_failures(prefix: Path) -> list[dict[str, str]]:
    path = _csv_path(prefix, "failures")
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _num(row: dict[str, str], key: str) -> float:
    try:
        return float(row.get(key) or "nan")
    except ValueError:
        return float("nan")


def run_scenario(name: str, host: str, users: int, seconds: int, workdir: Path) -> dict:
    prefix = workdir / name
    log = workdir / f"{name}.locust.log"
    argv = [
        str(Path(_procs.PY).with_name("locust")), "-f", str(LOCUSTFILE), "--headless",
        "--host", host, "-u", str(users), "-r", str(users), "-t", f"{seconds}s",
        "--stop-timeout", "2", "--only-summary", "--csv", str(prefix),
        "--loglevel", "WARNING", *SCENARIOS[name],
    ]
    env = {"GW_LOAD_KEY": GW_KEY, "PYTHONPATH": str(ROOT)}
    t0 = time.monotonic()
    with log.open("wb") as out:
        proc = _procs.start(argv, cpu=LOAD_CPU, env=env, cwd=str(ROOT), stdout=out, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired as exc:
            _procs.terminate(proc)
            raise RuntimeError(f"locust ({name}) did not finish in {seconds + 30}s; log: {log}") from exc
        finally:
            _procs.terminate(proc)
    wall = time.monotonic() - t0
    if not Path(f"{prefix}_stats.csv").exists():
        raise RuntimeError(f"locust ({name}) wrote no stats (exit {proc.returncode}):\n"
                           + log.read_text(errors="replace")[-3000:])
    stats = read_stats(prefix)
    agg = stats.get("Aggregated", {})
    return {
        "scenario": name,
        "users": users,
        "seconds": seconds,
        "wall_s": wall,
        "requests": int(_num(agg, "Request Count") or 0),
        "failures": int(_num(agg, "Failure Count") or 0),
        "rps": _num(agg, "Requests/s"),
        "p50": _num(agg, "50%"),
        "p99": _num(agg, "99%"),
        "by_name": {
            n: {"requests": int(_num(r, "Request Count")), "failures": int(_num(r, "Failure Count")),
                "rps": _num(r, "Requests/s"), "p50": _num(r, "50%"), "p99": _num(r, "99%")}
            for n, r in stats.items() if n != "Aggregated"
        },
        "failure_rows": read_failures(prefix),
        "locust_exit": proc.returncode,
        "log": str(log),
    }


def table(results: list[dict]) -> str:
    lines = ["| scenario | name | requests | failures | req/s | p50 (ms) | p99 (ms) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        for n, s in sorted(r["by_name"].items()):
            lines.append(f"| {r['scenario']} | {n} | {s['requests']} | {s['failures']} "
                         f"| {s['rps']:.0f} | {s['p50']:.0f} | {s['p99']:.0f} |")
        lines.append(f"| **{r['scenario']}** | **all** | **{r['requests']}** | **{r['failures']}** "
                     f"| **{r['rps']:.0f}** | **{r['p50']:.0f}** | **{r['p99']:.0f}** |")
    return "\n".join(lines)


def problems_of(r: dict, args) -> list[str]:
    out = []
    if r["locust_exit"] not in (0, 1):  # 1 = some request failed (counted below)
        out.append(f"{r['scenario']}: locust exited with {r['locust_exit']} (log: {r['log']})")
    if r["requests"] == 0:
        out.append(f"{r['scenario']}: no request was made")
    if r["failures"]:
        out.append(f"{r['scenario']}: {r['failures']} failed request(s)")
        for row in r["failure_rows"][:10]:
            what = f"{row.get('Method')} {row.get('Name')}: {row.get('Error')}"
            out.append(f"    {row.get('Occurrences')}x {what}")
    if not r["p99"] <= args.max_p99_ms:
        out.append(f"{r['scenario']}: aggregated p99 {r['p99']:.0f} ms > limit {args.max_p99_ms:g} ms")
    if not r["rps"] >= args.min_rps:
        out.append(f"{r['scenario']}: aggregated {r['rps']:.0f} req/s < floor {args.min_rps:g} req/s")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=30, help="total seconds of load (split across scenarios)")
    p.add_argument("--users", type=int, default=32)
    p.add_argument("--scenario", choices=["all", *SCENARIOS], default="all")
    p.add_argument("--max-p99-ms", type=float, default=250.0)
    p.add_argument("--min-rps", type=float, default=300.0)
    p.add_argument("--keep", action="store_true", help="keep the work directory (CSV, logs)")
    args = p.parse_args(argv)

    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    seconds = max(3, args.duration // len(names))
    workdir = Path(tempfile.mkdtemp(prefix="gw-locust-"))
    t_start = time.monotonic()
    gw = None
    gw_log = workdir / "gw.log"
    results: list[dict] = []
    problems: list[str] = []
    ok = False
    try:
        from tests.fakes.runner import FakeUpstream

        with FakeUpstream(api_key=FAKE_KEY, cpu=LOAD_CPU) as fake, gw_log.open("wb") as gw_out:
            config = workdir / "gw.yaml"
            config.write_text(gw_config(fake.openai_base_url, FAKE_KEY))
            port = _procs.free_port()
            gw = _procs.start(gw_argv(config, port), cpu=GW_CPU, cwd=str(workdir),
                              env={"PYTHONPATH": str(ROOT)}, stdout=gw_out, stderr=subprocess.STDOUT)
            try:
                _procs.wait_http_ok(f"http://127.0.0.1:{port}/ready", proc=gw, timeout=30)
            except (RuntimeError, TimeoutError) as e:
                tail = gw_log.read_text(errors="replace")[-3000:]
                print(f"gw did not start: {e}\n{tail}", file=sys.stderr)
                return 1
            print(f"gw ready on 127.0.0.1:{port} (core {GW_CPU}); fake upstream {fake.url} and locust "
                  f"on core {LOAD_CPU}; {args.users} users, {seconds}s per scenario", file=sys.stderr)
            for name in names:
                fake.reset()
                r = run_scenario(name, f"http://127.0.0.1:{port}", args.users, seconds, workdir)
                r["fake"] = fake.stats()
                results.append(r)
                print(f"  {name}: {r['requests']} requests, {r['failures']} failed, {r['rps']:.0f} req/s, "
                      f"p99 {r['p99']:.0f} ms ({r['wall_s']:.1f}s)", file=sys.stderr)
                problems += problems_of(r, args)
                if gw.poll() is not None:
                    problems.append(f"gw exited with {gw.returncode} during {name}")
                    break
        gw_text = gw_log.read_text(errors="replace")
        bad_lines = [ln for ln in gw_text.splitlines()
                     if '"level":"error"' in ln or "Traceback" in ln or "level=error" in ln]
        if bad_lines:
            problems.append(f"gw logged {len(bad_lines)} error line(s), e.g. {bad_lines[0][:300]}")

        print()
        print(table(results))
        print()
        for r in results:
            seen = sum(s["requests"] for n, s in r["by_name"].items() if not n.startswith("echo"))
            print(f"{r['scenario']}: locust counted {seen} requests to fake-gpt; the fake saw {r['fake']}")
        print(f"limits: 0 failures, p99 <= {args.max_p99_ms:g} ms, >= {args.min_rps:g} req/s per scenario; "
              f"total wall time {time.monotonic() - t_start:.1f}s")
        if problems:
            print("\nFAIL:\n  " + "\n  ".join(problems))
            return 1
        print("OK")
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
