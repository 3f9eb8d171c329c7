"""P4's latency per server process: which process served each connection, and at what latency.

    python -m bench.peers.perprocess [--processes 2] [--seconds 30] [--clients 50]

Starts P4's izzati target (bench/targets/vision_izzati.py, its defaults) with --processes server
processes, opens --clients keep-alive connections (one thread each, as wrk -c50 does), and looks up
with `ss` which server process holds each; every client sends LitServe's parity-test image for
--seconds (after a 5 s warm-up). Prints images/s, p50, p99 and the longest latency overall and per
server process, then the load average. What it shows: whether a tail comes from one process
serving slower than the other (an imbalance a shared queue would take up) or from within each.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import latency
from bench.peers.targets import wait_checked_by
from bench.peers.vision import check
from bench.runner import JSON_TYPE, Server, base_env, free_port, log
from bench.targets import peer_vision


def _owners(port: int) -> dict[int, str]:
    """Each client port connected to `port`: the pid of the server process that holds it."""
    listing = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True, text=True, check=True)
    owners = {}
    for line in listing.stdout.splitlines():
        fields = line.split()
        local, peer = fields[2], fields[3]
        found = re.search(r"pid=(\d+)", line)
        if local.endswith(f":{port}") and found:
            owners[int(peer.rsplit(":", 1)[1])] = found.group(1)
    return owners


def _figures(latencies: list[float], seconds: float) -> str:
    ordered = sorted(latencies)
    if not ordered:
        return "no replies"
    p50, p99 = latency.of_values(latencies, 50), latency.of_values(latencies, 99)
    return (
        f"{len(ordered) / seconds:.1f} images/s, p50 {p50 * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms, "
        f"longest {ordered[-1] * 1000:,.0f} ms"
    )


def measure(port: int, clients: int, warmup: float, seconds: float) -> dict[str, list[list[float]]]:
    """Each client's latencies after the warm-up, grouped by the server process of its connection."""
    body = json.dumps(peer_vision.payload(0))
    began = time.monotonic()
    timed_from, stop = began + warmup, began + warmup + seconds
    latencies: dict[int, list[float]] = {}
    failures: list[str] = []

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.connect()
        mine = latencies.setdefault(conn.sock.getsockname()[1], [])
        while (now := time.monotonic()) < stop:
            sent = time.perf_counter()
            conn.request("POST", "/", body=body, headers={"Content-Type": JSON_TYPE})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                failures.append(f"{response.status}")
            elif now >= timed_from:
                mine.append(time.perf_counter() - sent)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(min(2.0, warmup))
    owners = _owners(port)
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed: {failures[:5]}")
    grouped: dict[str, list[list[float]]] = {}
    for client_port, mine in latencies.items():
        grouped.setdefault(owners.get(client_port, "?"), []).append(mine)
    return grouped


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.perprocess", description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=50)
    opts = parser.parse_args()
    port = free_port()
    argv = [sys.executable, "-m", "bench.targets.vision_izzati", "--processes", str(opts.processes)]
    server = Server("izzati batched", [*argv, "--port", str(port)], port, base_env(), pin=False)
    log(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        server.start(Path(tmp))
        try:
            if problem := wait_checked_by(server, check, timeout=300):
                raise SystemExit(f"the target failed its check: {problem}")
            grouped = measure(port, opts.clients, 5.0, opts.seconds)
        finally:
            server.stop()
    every = [x for clients in grouped.values() for mine in clients for x in mine]
    print(f"all {opts.clients} connections: {_figures(every, opts.seconds)}")
    for owner, clients in sorted(grouped.items()):
        mine = [x for latencies in clients for x in latencies]
        print(f"server process {owner}: {len(clients)} connections, {_figures(mine, opts.seconds)}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
