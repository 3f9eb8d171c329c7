"""`python -m bench overload`: load shedding under 4x the sustainable load of a 50 ms callback.

A server with a plain callback that sleeps 50 ms, `threads=4` (sustainable: 80 requests/s) and
`IZZATI_MAX_INFLIGHT=8`, first unloaded (requests one after another), then offered 4x what it can
serve, open loop (a new request every 1/320 s whatever the replies do). Printed: p50/p99 of the
unloaded calls and of the accepted ones under load (goal: p99 <= 3x unloaded), how fast a refused
request hears 503 (goal: p99 <= 5 ms), and `Retry-After` beside the wait a refused client really
had before a slot was free (goal: within 2x).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time

import httpx

from bench import latency
from bench.runner import free_port

SERVER = """
import time
from izzati import Backend

def slow(text, data):
    time.sleep(0.05)
    return {"ok": True}

Backend(slow, threads=4, max_inflight=8, access_log=False).run("127.0.0.1", PORT, log_level="warning")
"""


def _p(values: list[float], q: float) -> float:
    return latency.of_values(values, q * 100) if values else float("nan")


async def _run(port: int, rate: float, seconds: float) -> None:
    url = f"http://127.0.0.1:{port}/"
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        unloaded = []
        for _ in range(40):
            started = time.perf_counter()
            assert (await client.post(url)).status_code == 200
            unloaded.append((time.perf_counter() - started) * 1000)
        accepted: list[float] = []
        refused: list[tuple[float, float, int]] = []  # (sent at, latency ms, Retry-After)
        ends: list[float] = []  # when each accepted call ended: a slot came free

        async def one(sent: float) -> None:
            reply = await client.post(url)
            took = (time.perf_counter() - sent) * 1000
            if reply.status_code == 200:
                accepted.append(took)
                ends.append(time.perf_counter())
            else:
                assert reply.status_code == 503 and reply.json()["error"] == "overloaded"
                refused.append((time.perf_counter(), took, int(reply.headers["retry-after"])))

        tasks = []
        begin = time.perf_counter()
        n = 0
        while time.perf_counter() - begin < seconds:
            target = begin + n / rate
            await asyncio.sleep(max(0.0, target - time.perf_counter()))
            tasks.append(asyncio.create_task(one(time.perf_counter())))
            n += 1
        await asyncio.gather(*tasks)
    ends.sort()
    waits = []
    for at, _, _ in refused:  # the real wait: until the next slot came free after the refusal
        later = [end - at for end in ends if end > at]
        if later:
            waits.append(later[0])
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"unloaded: {len(unloaded)} calls, p50 {_p(unloaded, 0.5):.1f} ms, p99 {_p(unloaded, 0.99):.1f} ms")
    print(
        f"offered {n} requests in {seconds:g} s ({rate:g}/s, 4x the 80/s it can serve): "
        f"{len(accepted)} accepted (p50 {_p(accepted, 0.5):.1f} ms, p99 {_p(accepted, 0.99):.1f} ms, "
        f"{_p(accepted, 0.99) / _p(unloaded, 0.99):.2f}x the unloaded p99; goal <= 3x), "
        f"{len(refused)} refused (503 in p50 {_p([r[1] for r in refused], 0.5):.2f} ms, "
        f"p99 {_p([r[1] for r in refused], 0.99):.2f} ms; goal <= 5 ms)"
    )
    if refused and waits:
        retry = [r[2] for r in refused]
        print(
            f"Retry-After: {dict(sorted((v, retry.count(v)) for v in set(retry)))} (seconds: count); the real "
            f"wait for a free slot: p50 {statistics.median(waits) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms "
            "(Retry-After is whole seconds, at least 1)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench overload", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to offer the load (default 5)")
    opts = parser.parse_args(argv)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    server = subprocess.Popen([sys.executable, "-c", SERVER.replace("PORT", str(port))], env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.05)
        asyncio.run(_run(port, 320.0, opts.seconds))
    finally:
        server.terminate()
        server.wait(30)
    return 0
