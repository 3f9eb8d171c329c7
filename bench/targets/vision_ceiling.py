"""P4's ceiling: the same decode and batched inference as the servers, in a plain loop, no HTTP.

    python -m bench.targets.vision_ceiling --seconds S [--processes N] [--threads T] [--lanes L]

N processes (the servers' process count), each with T torch threads (0, the default: torch's
own), each: build the model, then for S seconds decode batches of 8 base64 JPEGs (the request
bodies' images, on a thread pool of `os.cpu_count()` threads, as the servers do) and run the model
on each batch, on L threads at once (izzati's batches at once; default 1). Prints one JSON line:
the images of the batches that finished within the S seconds, S, each batch's milliseconds. What
no server can beat on these cores: it is the work of the requests without receiving or answering
them, counted as wrk counts a server's replies (`window`).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def window(batch: Callable[[], int], seconds: float) -> tuple[int, list[float]]:
    """Run `batch` (it returns the images it did) back to back until `seconds` have passed; return
    the images of the batches that finished within them, and every batch's milliseconds. wrk counts
    a server's replies so: those that came back within its run, not the ones in flight when its time
    was up; counting the last batch whole, over the time it took, would put the ceiling half a batch
    higher on average (P4: 3 % of a 10 s run)."""
    done, batches = 0, []
    start = time.perf_counter()
    until = start + seconds
    while (began := time.perf_counter()) < until:
        images = batch()
        ended = time.perf_counter()
        batches.append((ended - began) * 1000)
        if ended <= until:
            done += images
    return done, batches


def lanes_window(batch: Callable[[], int], seconds: float, lanes: int) -> tuple[int, list[float]]:
    """`window` on `lanes` threads at once (batches running side by side, as a server runs them);
    their images and batches together."""
    if lanes <= 1:
        return window(batch, seconds)
    with ThreadPoolExecutor(lanes) as pool:
        results = list(pool.map(lambda _: window(batch, seconds), range(lanes)))
    return sum(done for done, _ in results), [ms for _, every in results for ms in every]


def loop(seconds: float, threads: int, lanes: int, ready: Any, start: Any, out: Any) -> None:
    import torch

    from bench.targets import peer_vision

    if threads:
        torch.set_num_threads(threads)
    net = peer_vision.model()
    pool = ThreadPoolExecutor(os.cpu_count())
    images = [peer_vision.payload(i % 2)["image_data"] for i in range(peer_vision.BATCH)]
    peer_vision.classify(net, list(pool.map(peer_vision.decode, images)))  # warm
    ready.put(True)
    start.wait()

    def batch() -> int:
        peer_vision.classify(net, list(pool.map(peer_vision.decode, images)))
        return len(images)

    out.put(lanes_window(batch, seconds, lanes))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads per process (0: torch's default)")
    parser.add_argument("--lanes", type=int, default=1, help="batches at once per process")
    opts = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    ready, start, out = context.Queue(), context.Event(), context.Queue()
    args = (opts.seconds, opts.threads, opts.lanes, ready, start, out)
    procs = [context.Process(target=loop, args=args) for _ in range(opts.processes)]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get()
    start.set()
    results = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    images = sum(done for done, _ in results)
    batches = [ms for _, every in results for ms in every]
    print(json.dumps({"images": images, "seconds": opts.seconds, "batch_ms": batches}))


if __name__ == "__main__":
    main()
