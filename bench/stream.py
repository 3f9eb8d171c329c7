"""`python -m bench stream`: streamed replies, izzati beside a hand-written FastAPI
`StreamingResponse` of the same generator, interleaved in one run.

- time to first item: a generator whose first item is ready at once; the time from sending the
  request to the first body bytes, median of `--requests` requests (goal: izzati at most 2 ms
  over the generator's own first-item time, which is ~0 here);
- items/s: one request streaming `--items` small JSON items read to the end (goal: >= 1.5x
  FastAPI), median of `--runs`.

Both servers run one process each, pinned to CPU 0 (the client on CPU 1) when `taskset` exists;
neither writes an access log.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

from bench import latency
from bench.runner import free_port

TARGETS = ("izzati", "fastapi")


def _start(kind: str, use_async: bool, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.targets.stream_target", "--kind", kind, "--port", str(port), *extra]
    if use_async:
        argv.append("--async")
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        argv = ["taskset", "-c", "0", *argv]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{kind} target did not start")


def _request(port: int, n: int) -> bytes:
    body = f"n={n}".encode()
    return (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def first_item_ms(port: int) -> float:
    """Milliseconds from sending a request to the first bytes of its streamed body."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.perf_counter()
        sock.sendall(_request(port, 1))
        seen = b""
        while b'{"n":0}' not in seen:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"no item in the reply: {seen[:200]!r}")
            seen += chunk
        return (time.perf_counter() - started) * 1000


def items_per_second(port: int, n: int) -> float:
    """Items per second of one stream of `n` items, read to the end (and checked)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.perf_counter()
        sock.sendall(_request(port, n))
        received = bytearray()
        while chunk := sock.recv(1 << 20):
            received += chunk
        took = time.perf_counter() - started
    last = f'{{"n":{n - 1}}}'.encode()
    if received.count(b'{"n":') != n or last not in received:
        raise RuntimeError("the stream is not the generator's items")
    return n / took


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def slow_reader(mib: int, rate_mib: float) -> None:
    """Stream `mib` 1 MiB chunks to a reader that takes `rate_mib` MiB/s; print the server's RSS."""
    proc, port = _start("izzati", False, "--chunks")
    try:
        time.sleep(0.5)
        before = peak = _rss_mib(proc.pid)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
            sock.sendall(_request(port, mib))
            received, started = 0, time.perf_counter()
            while chunk := sock.recv(64 * 1024):
                received += len(chunk)
                ahead = received / (rate_mib * 1024 * 1024) - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
                peak = max(peak, _rss_mib(proc.pid))
        took = time.perf_counter() - started
        print(
            f"slow reader: {received / 1024 / 1024:.0f} MiB at {rate_mib:g} MiB/s in {took:.0f} s; server RSS "
            f"{before:.0f} MiB before, peak {peak:.0f} MiB: growth {peak - before:.0f} MiB (goal <= 64 MiB)"
        )
    finally:
        proc.terminate()
        proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench stream", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests for time to first item (default 200)")
    parser.add_argument("--items", type=int, default=100_000, help="items in the throughput stream (default 100000)")
    parser.add_argument("--runs", type=int, default=3, help="throughput runs per target (default 3)")
    parser.add_argument(
        "--slow-reader",
        type=int,
        metavar="MIB",
        help="instead: stream MIB chunks of 1 MiB to a reader at --rate MiB/s and report the server's memory",
    )
    parser.add_argument("--rate", type=float, default=1.0, help="the slow reader's MiB/s (default 1)")
    opts = parser.parse_args(argv)
    if opts.slow_reader:
        slow_reader(opts.slow_reader, opts.rate)
        return 0
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# streamed replies (load average {load})\n")
    print("| generator | target | first item p50 ms | p99 ms | items/s (median) | runs |")
    print("|---|---|---|---|---|---|")
    ratios = []
    for use_async in (False, True):
        servers = {kind: _start(kind, use_async) for kind in TARGETS}
        try:
            first: dict[str, list[float]] = {kind: [] for kind in TARGETS}
            for _ in range(opts.requests):  # interleaved: both see the same machine
                for kind in TARGETS:
                    first[kind].append(first_item_ms(servers[kind][1]))
            rates: dict[str, list[float]] = {kind: [] for kind in TARGETS}
            for _ in range(opts.runs):
                for kind in TARGETS:
                    rates[kind].append(items_per_second(servers[kind][1], opts.items))
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(10)
        label = "async def" if use_async else "def"
        for kind in TARGETS:
            p50, p99 = latency.of_values(first[kind], 50), latency.of_values(first[kind], 99)
            runs = ", ".join(f"{r:,.0f}" for r in rates[kind])
            rate = statistics.median(rates[kind])
            print(f"| {label} | {kind} | {p50:.2f} | {p99:.2f} | {rate:,.0f} | {runs} |")
        ratio = statistics.median(rates["izzati"]) / statistics.median(rates["fastapi"])
        izzati_first, fastapi_first = latency.of_values(first["izzati"], 50), latency.of_values(first["fastapi"], 50)
        ratios.append(
            f"{label}: izzati/fastapi items/s = {ratio:.2f}x (goal >= 1.5x), "
            f"first item izzati {izzati_first:.2f} ms vs fastapi {fastapi_first:.2f} ms"
        )
    print()
    for line in ratios:
        print(line)
    return 0
