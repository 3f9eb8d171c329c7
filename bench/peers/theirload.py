"""P4's load by LitServe's own load generator (its tests/parity_fastapi/benchmark.py), the
targets taking turns (bench/peers/vision.py runs it)."""

from __future__ import annotations

import concurrent.futures
import json
import random
import statistics
import time

from bench import latency
from bench.runner import JSON_TYPE, Row, Server, alone, log, settle, tree_cpu_seconds
from bench.targets import peer_vision

__all__ = ["CONCURRENCY", "TheirLoad", "their_method"]

CONCURRENCY = 50
"""Their test's concurrent clients on CPU."""


class TheirLoad:
    """Their load generator's method on one target: 50 threads sharing one requests.Session (a
    pool of 50), 50 requests per sample, each a random one of the two images; images/s is the
    mean over the timed samples of 50 / the sample's time."""

    def __init__(self, server: Server) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        self.server = server
        self.bodies = [json.dumps(peer_vision.payload(i)) for i in (0, 1)]
        self.chooser = random.Random(0)
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(pool_connections=CONCURRENCY, pool_maxsize=CONCURRENCY))
        self.url = f"http://127.0.0.1:{server.port}/"
        self.rates: list[float] = []
        self.latencies: list[float] = []
        self.failed = 0
        self.cpu = self.seconds = 0.0

    def _send(self, body: str) -> tuple[float, int]:
        """(seconds, status) of one request; status 0 when the connection failed (a reset): a failed
        request of the sample, not the end of the benchmark."""
        import requests

        began = time.perf_counter()
        try:
            response = self.session.post(self.url, data=body, headers={"Content-Type": JSON_TYPE})
        except requests.ConnectionError:
            return time.perf_counter() - began, 0
        return time.perf_counter() - began, response.status_code

    def samples(self, count: int, timed: bool = True) -> None:
        """Send `count` samples of 50 once the target has settled (`settle`: done with what the
        last wrk run left it); `timed=False`: warm-up, not counted."""
        settle(self.server)
        cpu0, t0 = tree_cpu_seconds(self.server.pid), time.perf_counter()
        for _ in range(count):
            began = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
                done = list(pool.map(self._send, [self.chooser.choice(self.bodies) for _ in range(CONCURRENCY)]))
            if timed:
                self.rates.append(CONCURRENCY / (time.perf_counter() - began))
                self.latencies += [seconds for seconds, _ in done]
                self.failed += sum(status != 200 for _, status in done)
        if timed:
            self.cpu += tree_cpu_seconds(self.server.pid) - cpu0
            self.seconds += time.perf_counter() - t0

    def row(self) -> Row:
        self.session.close()
        return Row(
            self.server.label,
            rps=statistics.mean(self.rates) if self.rates else 0.0,
            p50_ms=latency.of_values(self.latencies, 50) * 1000,
            p99_ms=latency.of_values(self.latencies, 99) * 1000,
            server_cpu=self.cpu / self.seconds if self.seconds else 0.0,
            runs=[round(x, 1) for x in self.rates],
            errors=self.failed,
            note=f"{self.failed} failed (not 200, or the connection failed)" if self.failed else "",
        )


ROUND = 2
"""Their method's timed samples per target in a row, the targets taking turns."""


def their_method(live: list[Server], samples: int) -> list[Row]:
    """Their load generator on each target: 2 warm-up samples, then `samples` - 2 timed ones in
    rounds of `ROUND` per target, the targets taking turns (each alone meanwhile), so that a slower
    or faster spell of the machine falls on all of them."""
    loads = [TheirLoad(server) for server in live]
    for one in loads:
        with alone(one.server, live):
            one.samples(2, timed=False)
    left = max(0, samples - 2)
    while left > 0:
        for one in loads:
            with alone(one.server, live):
                one.samples(min(ROUND, left))
        left -= ROUND
    rows = [one.row() for one in loads]
    for row in rows:
        log(f"  their method, {row.label}: {row.rps:.1f} images/s")
    return rows
