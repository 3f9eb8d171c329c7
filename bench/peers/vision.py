"""P4 of `python -m bench peers`: LitServe's parity test on its own terms (its `tests/parity_fastapi/`).

ResNet-18 with random weights on a 224 x 224 JPEG sent as base64 JSON, batches of 8 with a 10 ms
wait, CPU, for izzati batched, LitServe 0.2.19 batched (its test's server) and FastAPI (its
test's server: one process, the model on the event loop), and the ceiling: the same decode and
batched inference in a plain loop on the same cores, no HTTP (bench/targets/vision_*.py).

Every target's replies are checked first: each image once, then a burst of 8 at once, each reply
`{"output": c}` with c the class the model gives that image here. Then, per target, two loads:
- their load generator's method (tests/parity_fastapi/benchmark.py): 50 threads sharing one
  requests.Session (a pool of 50), 50 requests per sample, each a random one of the two images;
  the first 2 samples are warm-up; images/s is the mean over the others of 50 / the sample's time;
  the targets take turns, 2 timed samples each (their test times one server at a time: here a
  spell of the shared machine running slower falls on every target alike);
- wrk -c50 on one image's body for --seconds (the runs interleaved like every workload); after
  each round of runs, with every server stopped, --seconds more of the ceiling.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import sys
from pathlib import Path
from typing import Any

from bench.peers.ceiling import Ceiling, shared_threads
from bench.peers.theirload import CONCURRENCY, their_method
from bench.peers.tools import venv_python
from bench.runner import JSON_TYPE, Body, Row, Server, base_env, free_port, load_test, log
from bench.targets import peer_vision

__all__ = ["CONCURRENCY", "TITLE", "run_group", "report"]

TITLE = "LitServe's parity test: ResNet-18, a base64 JPEG in JSON, batches of 8 (10 ms), 50 clients, CPU"


def servers(processes: int, tools: list[str], concurrency: list[int]) -> list[Server]:
    """P4's servers (not started): izzati batched (its default: two batches at once per process, on
    half its cores each; also with torch's own threads, one batch at a time; and with each of
    `concurrency` batches at once),
    LitServe batched (at more than one process, also with izzati's share of the cores per process),
    FastAPI."""
    env = base_env()
    found = []
    if "izzati" in tools:
        base = [sys.executable, "-m", "bench.targets.vision_izzati", "--processes", str(processes)]
        # what its default brings: torch's own threads instead
        variants = [("izzati batched", []), ("izzati batched, torch's own threads", ["--cpu-threads", "0"])]
        variants += [(f"izzati batched, {c} at once", ["--max-concurrent", str(c)]) for c in concurrency]
        for label, extra in variants:
            port = free_port()
            found.append(Server(label, [*base, "--port", str(port), *extra], port, env, pin=False))
    if "litserve" in tools:
        base = [str(venv_python("litserve")), "-m", "bench.targets.vision_litserve", "--processes", str(processes)]
        litserve = [("litserve batched", env)]
        if processes > 1:  # LitServe with izzati's default share of the cores (its own: torch's threads)
            share = shared_threads(processes)
            label = f"litserve batched, {share} thread{'s' if share > 1 else ''} per process"
            litserve.append((label, {**env, "OMP_NUM_THREADS": str(share), "MKL_NUM_THREADS": str(share)}))
        for label, its_env in litserve:
            port = free_port()
            found.append(Server(label, [*base, "--port", str(port)], port, its_env, pin=False))
    if "fastapi" in tools:
        port = free_port()
        argv = [sys.executable, "-m", "bench.targets.vision_fastapi", "--port", str(port)]
        found.append(Server("fastapi", argv, port, env, pin=False))
    return found


_EXPECTED: dict[int, int] = {}


def expected(index: int) -> int:
    """The class the model gives image `index`, computed here."""
    if index not in _EXPECTED:
        net = peer_vision.model()
        _EXPECTED[index] = peer_vision.classify(net, [peer_vision.decode(peer_vision.payload(index)["image_data"])])[0]
    return _EXPECTED[index]


def _post(port: int, index: int, timeout: float = 120) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/", body=json.dumps(peer_vision.payload(index)), headers={"Content-Type": JSON_TYPE})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def check(port: int) -> str:
    """What is wrong with the target's replies ('' when nothing is)."""
    indexes = [0, 1] + [i % 2 for i in range(peer_vision.BATCH)]
    with concurrent.futures.ThreadPoolExecutor(peer_vision.BATCH) as pool:
        replies = [_post(port, 0), _post(port, 1), *pool.map(lambda i: _post(port, i), indexes[2:])]
    for i, (index, (status, ctype, raw)) in enumerate(zip(indexes, replies, strict=True)):
        want = {"output": expected(index)}
        if status != 200 or not ctype.startswith(JSON_TYPE) or json.loads(raw) != want:
            return f"reply {i} (image {index}): {status} {ctype} {raw[:200]!r}, expected {want}"
    return ""


def run_group(processes: int, opts: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """P4 at `processes` server processes: every target checked, then wrk's rounds (a slice of the
    ceiling after each), then their method."""
    group_servers = servers(processes, opts.targets, opts.batch_concurrency)
    body_path = tmp / "p4.json"
    body_path.write_text(json.dumps(peer_vision.payload(0)))
    body = Body(body_path, JSON_TYPE, body_path.read_bytes())
    log(f"P4 x{processes}: {', '.join(s.label for s in group_servers)}")
    from bench.peers.cli import load, stop
    from bench.peers.targets import wait_checked_by

    before = load()
    failed: dict[str, str] = {}
    wrk_rows: list[Row] = []
    python_rows: list[Row] = []
    top = Ceiling(processes)
    try:
        for server in group_servers:
            server.start(tmp)
        for server in group_servers:
            if problem := wait_checked_by(server, check, timeout=300):
                failed[server.label] = problem
                log(f"  {server.label}: FAILED its check: {problem}")
        live = [s for s in group_servers if s.label not in failed]
        wrk_rows = load_test(live, body, check, opts, CONCURRENCY, False, between=lambda: top.slice(opts.duration))
        python_rows = their_method(live, opts.p4_samples)
    finally:
        for server in group_servers:
            stop(server)
    ceiling = top.row()
    log(f"  ceiling: {ceiling.rps:.1f} images/s")
    failed_rows = [Row(label, note=f"check failed: {why}") for label, why in failed.items()]
    return {
        "workload": "P4",
        "processes": processes,
        "rows": [r.__dict__ for r in [*wrk_rows, *failed_rows, ceiling]],
        "python_rows": [r.__dict__ for r in python_rows],
        "load_before": before,
        "load_after": load(),
    }


def report(say: Any, group: dict[str, Any]) -> dict[str, float]:
    """P4's table (both load methods side by side) and its ratios."""
    python = {r["label"]: r for r in group["python_rows"]}
    say(
        "| target | images/s (wrk -c50) | p50 ms | p99 ms | CPU ms / image"
        " | images/s (their method) | p50 ms | p99 ms | note |"
    )
    say("|---|---|---|---|---|---|---|---|---|")
    for r in group["rows"]:
        mine = python.get(r["label"])
        theirs = f"{mine['rps']:.1f} | {mine['p50_ms']:.0f} | {mine['p99_ms']:.0f}" if mine else "– | – | –"
        if not r["rps"]:
            say(f"| {r['label']} | – | – | – | – | {theirs} | {r['note']} |")
            continue
        cpu = f"{r['server_cpu'] / r['rps'] * 1000:.1f}" if r["server_cpu"] else "–"
        say(
            f"| {r['label']} | {r['rps']:.1f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {cpu}"
            f" | {theirs} | {r['note']} |"
        )
    rps = {r["label"]: r["rps"] for r in group["rows"] if r["rps"]}
    found: dict[str, float] = {}
    for mine in [label for label in rps if label.startswith("izzati")]:
        for other in ["ceiling", *[label for label in rps if label.startswith("litserve")], "fastapi"]:
            if other in rps:
                found[f"{mine} / {other}"] = rps[mine] / rps[other]
                if other != "ceiling" and mine in python and other in python and python[other]["rps"]:
                    found[f"{mine} / {other} (their method)"] = python[mine]["rps"] / python[other]["rps"]
    say("\n" + ", ".join(f"{k} = {v:.2f}x" for k, v in found.items()))
    return found
