"""`python -m bench peers`: izzati beside the model-serving tools LitServe and BentoML and a
hand-written FastAPI baseline, side by side in one invocation.

    python -m bench peers [--quick] [--only P1,P2,P3,C1,E1] [--processes 1,2] [--seconds S] [--runs N]
        [--targets izzati,fastapi,litserve,bentoml] [--connections N] [--blas-threads N]

For each process count and workload, every target starts at once (its own process tree on a free
127.0.0.1 port), must pass the reply check (bench/peers/workloads.py), is warmed up, and then the
targets take turns under wrk (A B C D A B C D ...) for --runs timed runs; figures are medians.
Nothing is pinned: the 2-process rows need both cores. Every target writes no access log, so the
comparisons are like for like in that. Results: printed, and saved as bench/results/peers-*.md
and .json. See docs/performance.md, "Beside the serving tools". C1 (streamed chat) and E1
(embeddings) run izzati beside LitServe's OpenAI specs: bench/peers/chat.py.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.peers import chat, report, vision
from bench.peers.targets import BATCH, WAIT_MS, idle_cpu, make_server, targets_for, wait_checked
from bench.peers.tools import PEERS, TOOLS, ensure_venv, versions
from bench.peers.workloads import WORKLOADS, Workload, check_target, kernel_ms
from bench.runner import RESULTS, Row, Server, load_test, log, machine

__all__ = ["main"]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench peers", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 s runs, 1 run, 1 s warm-up")
    parser.add_argument(
        "--only", default="P1,P2,P3,P4,C1,E1", help="workloads, comma-separated (default P1,P2,P3,P4,C1,E1)"
    )
    parser.add_argument("--processes", default="1,2", help="server process counts, comma-separated (default 1,2)")
    parser.add_argument("--seconds", type=int, help="seconds per timed wrk run (default 5, quick 1)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up per target (default 2, quick 1)")
    parser.add_argument("--runs", type=int, help="timed runs per target, median reported (default 3, quick 1)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument(
        "--targets", default=",".join(TOOLS), help=f"tools, comma-separated (default {','.join(TOOLS)})"
    )
    parser.add_argument("--blas-threads", type=int, default=1, help="BLAS threads in every target (default 1)")
    parser.add_argument("--p4-samples", type=int, default=8, help="P4, their method: samples of 50 (first 2 warm-up)")
    parser.add_argument(
        "--batch-concurrency", default="", help="P4: also izzati with these batches at once per process, e.g. 1,2"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to save the report (bench/results)")
    opts = parser.parse_args(argv)
    opts.duration = opts.seconds or (1 if opts.quick else 5)  # the names bench.runner.load_test reads
    opts.warmup = opts.warmup or (1 if opts.quick else 2)
    opts.runs = opts.runs or (1 if opts.quick else 3)
    opts.only = [x.strip() for x in opts.only.split(",") if x.strip()]
    opts.targets = [x.strip() for x in opts.targets.split(",") if x.strip()]
    opts.processes = [int(x) for x in opts.processes.split(",")]
    opts.batch_concurrency = [int(x) for x in opts.batch_concurrency.split(",") if x.strip()]
    every = [*WORKLOADS, "P4", *chat.OPENAI_WORKLOADS]
    for name, values, allowed in (("--only", opts.only, every), ("--targets", opts.targets, TOOLS)):
        if unknown := [x for x in values if x not in allowed]:
            parser.error(f"{name}: unknown {unknown}; choose from {list(allowed)}")
    return opts


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def stop(server: Server) -> None:
    """Stop the server, then whatever of its session is left (the tools' worker processes)."""
    server.stop()
    if server.proc is not None:
        try:
            os.killpg(server.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_group(workload: Workload, processes: int, opts: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """One workload at one process count: start, check, warm up and time every target."""
    targets = targets_for(workload, opts.targets)
    servers = [make_server(t, workload, processes, opts.blas_threads, tmp) for t in targets]
    before = load()
    log(f"{workload.key} x{processes}: {', '.join(s.label for s in servers)} (load {before})")
    failed: dict[str, str] = {}
    try:
        for server in servers:
            server.start(tmp)
        for server in servers:
            if problem := wait_checked(server, workload):
                failed[server.label] = problem
                log(f"  {server.label}: FAILED its check: {problem}")
        live = [s for s in servers if s.label not in failed]
        idle = idle_cpu(live, 0.5 if opts.quick else 2.0)
        body = workload.wire(tmp)
        rows = load_test(live, body, lambda port: check_target(port, workload), opts, opts.connections, False)
    finally:
        for server in servers:
            stop(server)
    timed = {r.label: r for r in rows}
    every = [timed.get(s.label) or Row(s.label, note=f"check failed: {failed[s.label]}") for s in servers]
    return {
        "workload": workload.key,
        "processes": processes,
        "rows": [r.__dict__ for r in every],
        "idle_cpu": idle,
        "load_before": before,
        "load_after": load(),
    }


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")
    started = time.perf_counter()
    now = datetime.datetime.now(datetime.UTC)
    out: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        out.append(text)

    skipped = {}
    for tool in [t for t in opts.targets if t in PEERS]:
        if problem := ensure_venv(tool):
            skipped[tool] = problem
            log(f"{tool}: {problem}; its rows are skipped")
    opts.targets = [t for t in opts.targets if t not in skipped]
    info = {"date": now.strftime("%Y-%m-%d %H:%M UTC"), **machine()}
    info.update(versions([t for t in opts.targets if t in PEERS]))
    results: dict[str, Any] = {"info": info, "options": {k: v for k, v in vars(opts).items()}, "groups": []}
    say(f"# izzati beside the serving tools{' (--quick smoke run)' if opts.quick else ''}\n")
    say(f"`python -m bench peers {' '.join(argv if argv is not None else sys.argv[2:])}`\n")
    for key, value in info.items():
        say(f"- {key}: {value}")
    say(
        f"- each figure: median of {opts.runs} x {opts.duration} s after {opts.warmup} s warm-up (p50/p99: of all"
        " their requests together), targets interleaved;"
        f" wrk -t1 -c{opts.connections}, one identical JSON body per workload; nothing pinned"
    )
    say(
        f"- batched rows: each tool's own batching, batches of up to {BATCH} ({WAIT_MS:g} ms longest wait where the"
        " tool has that setting); BLAS threads per target process: " + str(opts.blas_threads)
    )
    say(
        "- like for like: no target writes an access log (izzati `access_log=False`, uvicorn `--no-access-log` for"
        " FastAPI and LitServe, BentoML `logging.access.enabled: false`); the tools' other defaults are kept"
    )
    for tool, problem in skipped.items():
        say(f"- {tool}: not run: {problem}")
    with tempfile.TemporaryDirectory(prefix="izzati-peers-") as tmp:
        for processes in opts.processes:
            if "P4" in opts.only:
                group = vision.run_group(processes, opts, Path(tmp))
                results["groups"].append(group)
                say(f"\n### P4 x{processes} server process{'es' if processes > 1 else ''}: {vision.TITLE}\n")
                say(f"load average before {group['load_before']}, after {group['load_after']}\n")
                group["ratios"] = vision.report(say, group)
            for key in [k for k in WORKLOADS if k in opts.only]:
                workload = WORKLOADS[key]
                group = run_group(workload, processes, opts, Path(tmp))
                results["groups"].append(group)
                say(f"\n### {key} x{processes} server process{'es' if processes > 1 else ''}: {workload.title}\n")
                say(f"load average before {group['load_before']}, after {group['load_after']}\n")
                report.rows_table(say, group["rows"], group["idle_cpu"])
                if workload.n is not None:
                    group["kernel_ms"] = kernel = kernel_ms(workload.n, BATCH, opts.blas_threads)
                    if kernel:
                        say("\n" + report.kernel_line(kernel, opts.blas_threads, BATCH))
                say("")
                group["ratios"] = report.ratio_table(say, group["rows"])
            for key in [k for k in chat.OPENAI_WORKLOADS if k in opts.only]:
                results.setdefault("openai", []).append(chat.run_group(key, processes, opts, Path(tmp), say))
    found = report.goals(results["groups"])
    results["goals"] = found
    say("\n### Goals (issues 15 and 22)\n")
    report.goals_table(say, found)
    say(f"\nload average at the end: {load()}; total bench time {time.perf_counter() - started:.0f} s")
    stamp = now.strftime("%Y%m%d-%H%M%S") + ("-quick" if opts.quick else "")
    saved = report.save(results, out, opts.results, stamp)
    log(f"saved {saved} and .json")
    return 0
