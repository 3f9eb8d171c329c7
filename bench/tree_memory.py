"""The memory of a service's whole process tree: the summed RSS of every process it runs.

    python -m bench tree [--model-mb 200] [--workers 2] [--baseline DIR]

Serves bench/targets/big_model.py (setup() holds `--model-mb` MiB) with `python -m app`,
IZZATI_WORKERS=`--workers`, memory:// with jobs on (the defaults), waits until /ready, runs one
call and one job, then sums VmRSS over the `python -m app` process and all its descendants. With
`--baseline DIR` (a checkout of another izzati, e.g. `git archive main | tar -x -C DIR`), the same
run is made with that izzati first, in the same invocation, and the ratio printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.runner import free_port

ROOT = Path(__file__).resolve().parent.parent


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        found.append(parent)
        for task in Path(f"/proc/{parent}/task").iterdir():
            children = (task / "children").read_text().split()
            todo.extend(int(child) for child in children)
    return found


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(izzati_root: Path, model_mb: int, workers: int) -> tuple[float, int]:
    """The summed RSS (MiB) of the service's processes, and how many there are."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{izzati_root}{os.pathsep}{ROOT / 'bench' / 'targets'}",
        "IZZATI_CALLBACK": "big_model:Model",
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_WORKERS": str(workers),
        "BIG_MODEL_MB": str(model_mb),
    }
    proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=izzati_root, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"{izzati_root}: the service did not become ready")
            time.sleep(0.2)
        httpx.post(url + "/", data={"a": "1"}).raise_for_status()
        job = httpx.post(url + "/jobs", data={"a": "1"}).json()["id"]
        while httpx.get(f"{url}/jobs/{job}").json()["status"] not in ("done", "failed"):
            time.sleep(0.1)
        time.sleep(1.0)  # let the processes settle
        pids = _descendants(proc.pid)
        return sum(_rss_mib(pid) for pid in pids), len(pids)
    finally:
        proc.terminate()
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench tree", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-mb", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline", type=Path, help="another izzati checkout to measure first")
    args = parser.parse_args(argv)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = {}
    for name, root in (("baseline", args.baseline), ("this", ROOT)):
        if root is None:
            continue
        total, count = measure(root.resolve(), args.model_mb, args.workers)
        results[name] = total
        print(f"{name:8} {root}: {count} processes, summed RSS {total:.0f} MiB (model {args.model_mb} MiB)")
    if "baseline" in results:
        print(f"this / baseline: {results['this'] / results['baseline']:.2f}")
    return 0
