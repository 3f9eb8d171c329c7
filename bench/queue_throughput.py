"""Queue throughput: items/s for put→get across two processes, izzati against the raw tools.

    python -m bench queues [-n 20000] [--runs 3] [--redis-url redis://host:port/db]

Without ``--redis-url`` it starts its own ``redis-server`` on a free loopback port.
A producer process puts N small JSON dicts; this process gets them all; the clock runs from
the producer's start to the last get. Median of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import redis

from bench.runner import free_port
from izzati._process import mp_context
from izzati.queues import MemoryQueue, RedisQueue

ITEM = {"name": "alice", "n": 0, "tags": ["a", "b"]}


def _item(i: int) -> dict[str, Any]:
    return {**ITEM, "n": i}


def run_pair(producer: Callable[[int], None], consumer: Callable[[int], None], n: int) -> float:
    """Start ``producer(n)`` in a forked process, run ``consumer(n)`` here; return items/s."""
    t0 = time.perf_counter()
    proc = mp_context().Process(target=producer, args=(n,))
    proc.start()
    consumer(n)
    elapsed = time.perf_counter() - t0
    proc.join()
    return n / elapsed


def bench_mp(n: int) -> float:
    q: Any = mp_context().Queue()

    def produce(n: int) -> None:
        for i in range(n):
            q.put(_item(i))

    def consume(n: int) -> None:
        for _ in range(n):
            q.get()

    return run_pair(produce, consume, n)


def bench_memory(n: int) -> float:
    q = MemoryQueue()

    def produce(n: int) -> None:
        for i in range(n):
            q.put(_item(i))

    def consume(n: int) -> None:
        for _ in range(n):
            q.get()

    return run_pair(produce, consume, n)


def bench_raw_redis(url: str, n: int) -> float:
    key = f"bench:raw:{time.time_ns()}"

    def produce(n: int) -> None:
        r = redis.Redis.from_url(url)
        for i in range(n):
            r.lpush(key, json.dumps(_item(i)))

    def consume(n: int) -> None:
        r = redis.Redis.from_url(url)
        for _ in range(n):
            _, raw = r.brpop([key], timeout=0)  # type: ignore[misc]
            json.loads(raw)

    return run_pair(produce, consume, n)


def bench_izzati_redis(url: str, n: int) -> float:
    name = f"bench:izzati:{time.time_ns()}"

    def produce(n: int) -> None:
        q = RedisQueue(url, name=name)
        for i in range(n):
            q.put(_item(i))

    def consume(n: int) -> None:
        q = RedisQueue(url, name=name)
        for _ in range(n):
            q.get()
        q.task_done()
        q.close()

    return run_pair(produce, consume, n)


def start_redis(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start a throwaway redis-server (no persistence) on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install -y redis-server) or pass --redis-url")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory]
    proc = subprocess.Popen([*args, "--appendonly", "no"], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return proc, url
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                sys.exit(f"redis-server on port {port} did not start")
            time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    """Run every case, print a table of medians and the izzati/raw ratios."""
    parser = argparse.ArgumentParser(prog="python -m bench queues", description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="items per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per case (median)")
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    opts = parser.parse_args(argv)
    server = None
    with tempfile.TemporaryDirectory() as tmp:
        url = opts.redis_url
        if url is None:
            server, url = start_redis(tmp)
        try:
            cases: dict[str, Callable[[], float]] = {
                "raw multiprocessing.Queue": lambda: bench_mp(opts.n),
                "izzati memory://": lambda: bench_memory(opts.n),
                "raw redis-py LPUSH/BRPOP": lambda: bench_raw_redis(url, opts.n),
                "izzati redis://": lambda: bench_izzati_redis(url, opts.n),
            }
            for case in cases.values():  # warm up: imports, connections, page cache
                case()
            samples: dict[str, list[float]] = {label: [] for label in cases}
            for _ in range(opts.runs):  # interleaved, so drift hits every case alike
                for label, case in cases.items():
                    samples[label].append(case())
            rates = {label: statistics.median(xs) for label, xs in samples.items()}
        finally:
            if server is not None:
                server.terminate()
                server.wait(10)
    print(f"put→get across two processes, {opts.n} items, median of {opts.runs} runs")
    print(f"{'case':<28}{'items/s':>12}")
    for label, rate in rates.items():
        print(f"{label:<28}{rate:>12,.0f}")
    mem = rates["izzati memory://"] / rates["raw multiprocessing.Queue"]
    red = rates["izzati redis://"] / rates["raw redis-py LPUSH/BRPOP"]
    print(f"ratio memory:// / multiprocessing.Queue = {mem:.2f}")
    print(f"ratio redis://  / LPUSH+BRPOP           = {red:.2f}")
    return 0


if __name__ == "__main__":  # python -m bench.queue_throughput: point to the one way
    sys.exit("run it as: python -m bench queues")
