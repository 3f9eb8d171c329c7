"""Multiplexing under load: 10 model ids over a service that keeps `--max-models` per process,
against the same service keeping all 10 (no evictions), in one invocation.

    python -m bench multiplex [--requests 400] [--clients 8] [--max-models 3] [--load-ms 50]

Each service is `python -m app` with bench/targets/multiplex_model.py (a load sleeps `--load-ms`
and holds 8 MiB). Two request patterns, each seeded: `uniform` (every id alike) and `hot` (80% of
requests to 3 ids, 20% to the other 7). Reported per run: requests/s, median and p99 latency, and
from the service's own /metrics the models loaded, evicted and resident, and the hit ratio
(1 - loads / requests).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import latency
from bench.runner import free_port, log

ROOT = Path(__file__).resolve().parent.parent
IDS = [f"m{i}" for i in range(10)]


def _pattern(name: str, count: int) -> list[str]:
    rng = random.Random(19)
    if name == "uniform":
        return [rng.choice(IDS) for _ in range(count)]
    hot, cold = IDS[:3], IDS[3:]
    return [rng.choice(hot) if rng.random() < 0.8 else rng.choice(cold) for _ in range(count)]


def _metrics(url: str) -> dict[str, float]:
    figures: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(url + "/metrics").text):
        for sample in family.samples:
            if sample.name.startswith("izzati_model"):
                figures[sample.name] = figures.get(sample.name, 0.0) + sample.value
    return figures


def _run(max_models: int, pattern: str, opts: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IZZATI_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "bench" / "targets")]),
        IZZATI_HOST="127.0.0.1",
        IZZATI_PORT=str(port),
        IZZATI_CALLBACK="multiplex_model:Classifier",
        BENCH_MAX_MODELS=str(max_models),
        BENCH_LOAD_MS=str(opts.load_ms),
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "app"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the service did not start")
            time.sleep(0.1)
        ids = _pattern(pattern, opts.requests)
        with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=opts.clients)) as client:

            def one(model_id: str) -> float:
                began = time.perf_counter()
                reply = client.post(url + "/", data={"x": "1"}, headers={"Izzati-Model": model_id})
                assert reply.status_code == 200 and reply.json()["model"] == model_id, reply.text
                return time.perf_counter() - began

            began = time.perf_counter()
            with ThreadPoolExecutor(opts.clients) as pool:
                took = list(pool.map(one, ids))
            elapsed = time.perf_counter() - began
        found = _metrics(url)
    finally:
        server.terminate()
        server.wait(30)
    loads = found.get("izzati_model_loads_total", 0.0)
    return {
        "rps": len(ids) / elapsed,
        "p50_ms": latency.of_values(took, 50) * 1000,
        "p99_ms": latency.of_values(took, 99) * 1000,
        "loads": loads,
        "evictions": found.get("izzati_model_evictions_total", 0.0),
        "resident": found.get("izzati_models_resident", 0.0),
        "hit": 1 - loads / len(ids),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench multiplex", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per run (default 400)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--max-models", type=int, default=3, help="models kept per process (default 3)")
    parser.add_argument("--load-ms", type=float, default=50, help="milliseconds a model takes to load (default 50)")
    opts = parser.parse_args(argv)
    log(f"load average before: {os.getloadavg()}")
    print(
        f"{'pattern':<8} {'max_models':>10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'loads':>6} {'evicted':>8} {'resident':>8} {'hit':>6}"
    )
    for pattern in ("uniform", "hot"):
        rows = {n: _run(n, pattern, opts) for n in (opts.max_models, len(IDS))}
        for n, r in rows.items():
            print(
                f"{pattern:<8} {n:>10} {r['rps']:>8.0f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
                f"{r['loads']:>6.0f} {r['evictions']:>8.0f} {r['resident']:>8.0f} {r['hit']:>6.1%}"
            )
        small, full = rows[opts.max_models], rows[len(IDS)]
        print(f"{pattern}: max_models={opts.max_models} req/s = {small['rps'] / full['rps']:.2f}x all 10 resident")
    log(f"load average after: {os.getloadavg()}")
    return 0
