"""The targets of the peer benchmark: which tool serves which workload, and how each is started.

Every target is a server process tree on a free 127.0.0.1 port, in its own session, serving `POST /`
(bench/targets/peer_*.py). Batched targets use each tool's own batching (batches of up to 8,
waiting at most 5 ms where the tool has such a setting); FastAPI has none, so it serves the
unbatched rows only. Every target gets the same BLAS thread count (OPENBLAS_NUM_THREADS and
friends, `--blas-threads`), so no tool's numpy takes more cores than another's.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.peers.tools import P1_ONLY, venv_python
from bench.peers.workloads import Workload, check_target
from bench.runner import Server, base_env, free_port, tree_cpu_seconds

__all__ = ["Target", "targets_for", "make_server", "wait_checked", "wait_checked_by", "idle_cpu"]

BATCH = 8
WAIT_MS = 5.0


@dataclass(frozen=True)
class Target:
    """A tool, batched or not."""

    tool: str
    batched: bool = False

    @property
    def label(self) -> str:
        """The row's name in the report."""
        return f"{self.tool} batched" if self.batched else self.tool


def targets_for(workload: Workload, tools: list[str]) -> list[Target]:
    """The targets of `workload`: every tool, and for a model each batching tool batched too."""
    if workload.n is None:
        return [Target(tool) for tool in tools]
    found = [Target(tool) for tool in tools if tool not in P1_ONLY]
    found += [Target(tool, True) for tool in tools if tool not in ("fastapi", *P1_ONLY)]
    return found


def make_server(target: Target, workload: Workload, processes: int, blas_threads: int, home: Path) -> Server:
    """The server of `target` for `workload`, `processes` server processes (not started)."""
    port = free_port()
    env = base_env()
    blas = str(blas_threads)
    env.update(OPENBLAS_NUM_THREADS=blas, OMP_NUM_THREADS=blas, MKL_NUM_THREADS=blas)
    env.update(BENCH_WORKLOAD=workload.key, BENCH_PROCESSES=str(processes))
    env.update(BENCH_BATCH=str(BATCH), BENCH_WAIT_MS=str(WAIT_MS))
    if workload.n is not None:
        env["BENCH_MODEL_N"] = str(workload.n)
    common = ["--port", str(port), "--workload", workload.key, "--processes", str(processes)]
    batching = ["--batch", str(BATCH), "--wait-ms", str(WAIT_MS)] if target.batched else []
    if target.tool in ("izzati", "izzati-async"):
        argv = [sys.executable, "-m", "bench.targets.peer_izzati", *common, *(["--batched"] if batching else [])]
        argv += ["--async"] if target.tool == "izzati-async" else []
    elif target.tool == "asgi":
        argv = [sys.executable, "-m", "bench.targets.peer_asgi", "--port", str(port), "--processes", str(processes)]
    elif target.tool == "fastapi":
        argv = [sys.executable, "-m", "bench.targets.peer_fastapi", "--port", str(port), "--processes", str(processes)]
    elif target.tool == "litserve":
        argv = [str(venv_python("litserve")), "-m", "bench.targets.peer_litserve", *common, *batching]
    elif target.tool == "bentoml":
        service = "Echo" if workload.n is None else ("BatchedModel" if target.batched else "Model")
        # its home (models, logs) in the run's temporary folder; no usage tracking
        env.update(BENTOML_HOME=str(home / "bentoml"), BENTOML_DO_NOT_TRACK="true")
        bentoml = str(venv_python("bentoml").parent / "bentoml")
        argv = [bentoml, "serve", f"bench.targets.peer_bentoml:{service}", "--host", "127.0.0.1", "--port", str(port)]
    else:
        raise ValueError(target.tool)
    return Server(target.label, argv, port, env, pin=False)


def wait_checked(server: Server, workload: Workload, timeout: float = 180.0) -> str:
    """Wait until `server` answers its check ('' then), or say why it did not within `timeout`."""
    return wait_checked_by(server, lambda port: check_target(port, workload), timeout)


def wait_checked_by(server: Server, check: Callable[[int], str], timeout: float = 180.0) -> str:
    """Wait until `check(port)` passes ('' then), or say why it did not within `timeout`."""
    deadline = time.monotonic() + timeout
    try:
        server.wait_ready(timeout)
    except RuntimeError as exc:
        return str(exc)
    problem = "no answer"
    while time.monotonic() < deadline:
        assert server.proc is not None
        if server.proc.poll() is not None:
            return f"exited with {server.proc.returncode}: {server.log_tail()}"
        try:
            problem = check(server.port)
        except OSError as exc:  # listening, but not serving yet (its workers still load)
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if not problem:
                return ""
            if "status 5" not in problem:
                return problem  # a wrong answer: waiting will not make it right
        time.sleep(0.5)
    return f"not ready within {timeout:.0f} s: {problem}"


def idle_cpu(servers: list[Server], seconds: float = 2.0) -> dict[str, float]:
    """Cores each server tree uses while nobody calls it (what it takes from the one under load)."""
    before = {s.label: tree_cpu_seconds(s.pid) for s in servers}
    time.sleep(seconds)
    return {s.label: (tree_cpu_seconds(s.pid) - before[s.label]) / seconds for s in servers}
