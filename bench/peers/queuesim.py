"""P4's batching schedules as a model: what the queues alone do to the tail, with no HTTP, no GIL
and no other process on the cores.

    python -m bench.peers.queuesim [--seconds 600] [--seeds 3] [--jitter 0.03]

A closed loop like P4's: clients that send their next request a few ms after each reply, batches
of at most 8 that take `a + b * size` seconds (±jitter; 5 ms + 73 ms an image, about ResNet-18 on
one core here). Three schedules:

- per process (izzati): 25 clients on one queue with one batch at a time: two server processes
  each batching their own 25 connections;
- one shared queue (LitServe): 50 clients, two batches at a time from one queue (its two inference
  workers);
- per process, even batches: as the first, but with more waiting than one batch holds, a batch
  takes its even share (17 waiting: 6, 6, 5). Measured on the real target, this lost more images/s
  than it saved in p99 (CHANGELOG, 2026-12-07), so izzati does not do it; it is here as the bound.

Prints images/s, p50 and p99 of each, per seed.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random

from bench import latency

__all__ = ["simulate"]

BATCH = 8
FIXED = 0.005  # seconds a batch, whatever its size
PER_IMAGE = 0.073  # seconds an image
WARMUP = 20.0  # seconds left out of the figures


def simulate(
    clients: int, lanes: int, even: bool, seconds: float, jitter: float, seed: int
) -> tuple[float, float, float]:
    """(images/s, p50 s, p99 s) of `clients` in a closed loop on one queue with `lanes` batches at once."""
    rnd = random.Random(seed)
    queue: list[float] = []  # when each waiting request came
    events: list[tuple[float, int, list[float]]] = []  # (when, 0 arrival / 1 batch done, the batch)
    for _ in range(clients):
        heapq.heappush(events, (rnd.random() * 0.01, 0, []))
    free, latencies = lanes, []

    def start(now: float) -> None:
        nonlocal free
        while free and queue:
            take = min(BATCH, len(queue))
            if even and len(queue) > BATCH:
                take = math.ceil(len(queue) / math.ceil(len(queue) / BATCH))
            batch, queue[:] = queue[:take], queue[take:]
            free -= 1
            took = (FIXED + PER_IMAGE * take) * (1 + rnd.uniform(-jitter, jitter))
            heapq.heappush(events, (now + took, 1, batch))

    while events:
        now, kind, batch = heapq.heappop(events)
        if now > seconds:
            break
        if kind == 0:
            queue.append(now)
        else:
            free += 1
            for came in batch:
                if now > WARMUP:
                    latencies.append(now - came)
                heapq.heappush(events, (now + rnd.uniform(0.001, 0.004), 0, []))
        start(now)
    p50, p99 = latency.of_values(latencies, 50), latency.of_values(latencies, 99)
    return len(latencies) / (seconds - WARMUP), p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jitter", type=float, default=0.03, help="a batch's time varies by up to this fraction")
    opts = parser.parse_args()
    schedules = [
        ("per process (izzati): 25 clients, 1 batch at a time", 25, 1, False),
        ("one shared queue (LitServe): 50 clients, 2 batches at a time", 50, 2, False),
        ("per process, even batches: 25 clients, 1 batch at a time", 25, 1, True),
    ]
    for label, clients, lanes, even in schedules:
        for seed in range(1, opts.seeds + 1):
            rate, p50, p99 = simulate(clients, lanes, even, opts.seconds, opts.jitter, seed)
            print(f"{label}, seed {seed}: {rate:.1f} images/s, p50 {p50 * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms")


if __name__ == "__main__":
    main()
