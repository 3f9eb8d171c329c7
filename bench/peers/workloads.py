"""The peer benchmark's workloads: one JSON body each, the same for every target, and the checker
that every target's replies must pass before it is timed.

- P1 overhead: `{"name": "alice", "n": "1"}` echoed as JSON.
- P2 a small CPU model: W 1024 x 1024 float32, body `{"x": [1024 floats]}`, reply `{"y", "s"}`.
- P3 a weight-bound model: the same with W 4096 x 4096 (and x of 4096 floats).

The check sends the workload's body once, then a burst of BURST different bodies at the same time
(so a batching target has to batch them, and put each reply back with its own request), and
compares each reply with the one computed here: status 200, `Content-Type: application/json`
exactly, for P1 the exact JSON, for P2/P3 `y` and `s` against W @ x computed in float64. float32
kernels add in different orders (one x, or a stack of xs through a matrix product; each tool's
threads), so `s` may differ in its last digits: it must be within 1e-3 + 2 float32 epsilons of
the sum of |W @ x|, and `y` must be an index whose value is within 1e-3 of the largest.
"""

from __future__ import annotations

import functools
import http.client
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.runner import JSON_TYPE, REPO, Body, base_env, json_reply
from bench.targets import peer_model

__all__ = ["WORKLOADS", "BURST", "Workload", "check_reply", "check_target", "expected_model", "kernel_ms"]

BURST = 8
"""Different bodies sent at once by the check: a full batch of the batched targets."""

_EPS32 = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class Workload:
    """One workload: its key, what it is, the model size (None for P1) and its request bodies."""

    key: str
    title: str
    n: int | None

    def body(self, i: int = 0) -> dict[str, Any]:
        """Request body number `i`: 0 is the one timed, 1..BURST the check's burst."""
        if self.n is None:
            return {"name": "alice", "n": "1"} if i == 0 else {"name": f"alice{i}", "n": str(i)}
        return {"x": peer_model.vector(self.n, seed=1 + i)}

    def wire(self, tmp: Path) -> Body:
        """The timed body, written to a file for wrk."""
        data = json.dumps(self.body(), separators=(",", ":")).encode()
        path = tmp / f"{self.key}.json"
        path.write_bytes(data)
        return Body(path, JSON_TYPE, data)


WORKLOADS = {
    "P1": Workload("P1", 'overhead: {"name": "alice", "n": "1"} echoed as JSON', None),
    "P2": Workload("P2", "small CPU model: W 1024 x 1024 float32, reply argmax and sum of W @ x", 1024),
    "P3": Workload("P3", "weight-bound model: W 4096 x 4096 float32 (64 MiB), same reply", 4096),
}


@functools.cache
def _reference(n: int) -> Any:
    return peer_model.weights(n).astype(np.float64)


def expected_model(n: int, x: list[float]) -> tuple[Any, float, float]:
    """(W @ x in float64, its sum, the tolerance on the sum) for model size n."""
    y = _reference(n) @ np.asarray(x, dtype=np.float32).astype(np.float64)
    return y, float(y.sum()), 1e-3 + 2 * _EPS32 * float(np.abs(y).sum())


def check_reply(workload: Workload, body: dict[str, Any], status: int, ctype: str, raw: bytes) -> str:
    """What is wrong with a reply to `body` ('' when nothing is)."""
    problem, value = json_reply(status, ctype, raw)
    if problem:
        return problem
    if workload.n is None:
        return "" if value == body else f"body {value!r} != expected {body!r}"
    if not isinstance(value, dict) or set(value) != {"y", "s"}:
        return f"body {raw[:200]!r} is not {{'y': int, 's': float}}"
    y, total, tolerance = expected_model(workload.n, body["x"])
    index, s = value["y"], value["s"]
    if type(index) is not int or not 0 <= index < workload.n or y[index] < y.max() - 1e-3:
        return f"y = {index!r}, expected {int(y.argmax())}"
    if type(s) not in (int, float) or abs(s - total) > tolerance:
        return f"s = {s!r}, expected {total:.3f} (within {tolerance:.4f})"
    return ""


def _post(port: int, body: dict[str, Any]) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/", body=json.dumps(body), headers={"Content-Type": JSON_TYPE})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def check_target(port: int, workload: Workload) -> str:
    """Check the target on `port`: its reply to the timed body, then to BURST bodies at once."""
    body = workload.body()
    problem = check_reply(workload, body, *_post(port, body))
    if problem:
        return problem
    bodies = [workload.body(i) for i in range(1, BURST + 1)]
    with ThreadPoolExecutor(BURST) as pool:
        replies = list(pool.map(functools.partial(_post, port), bodies))
    for i, (one, reply) in enumerate(zip(bodies, replies, strict=True), 1):
        problem = check_reply(workload, one, *reply)
        if problem:
            return f"burst request {i}: {problem}"
    return ""


_KERNEL = """
import json, statistics, sys, time
import numpy as np
from bench.targets import peer_model
n, batch = int(sys.argv[1]), int(sys.argv[2])
w = peer_model.weights(n)
xs = np.asarray([peer_model.vector(n, seed) for seed in range(batch)], dtype=np.float32)
def ms(f):
    f()
    times = []
    for _ in range(15):
        t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000
print(json.dumps({"one": ms(lambda: w @ xs[0]), "batch": ms(lambda: xs @ w.T)}))
"""


def kernel_ms(n: int, batch: int, blas_threads: int) -> dict[str, float]:
    """The matrix product alone, in a fresh process with the targets' BLAS threads: milliseconds of
    W @ x for one x ("one") and of X @ W.T for `batch` xs ("batch"), medians of 15."""
    env = base_env()
    env.update(OPENBLAS_NUM_THREADS=str(blas_threads), OMP_NUM_THREADS=str(blas_threads))
    done = subprocess.run(
        [sys.executable, "-c", _KERNEL, str(n), str(batch)], cwd=REPO, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        return {}
    found: dict[str, float] = json.loads(done.stdout)
    return found
