"""P4's ceiling: the same decode and batched inference in a plain loop, no HTTP, timed a slice at a
time between the servers' rounds (bench/peers/vision.py runs it)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bench import latency
from bench.runner import Row, base_env
from izzati import threads

__all__ = ["Ceiling", "shared_threads"]


def shared_threads(processes: int) -> int:
    """The torch threads of each of `processes` processes under izzati's default share of the cores."""
    return max(1, threads.usable_cores() // processes)


class Ceiling:
    """The same work in a plain loop on `processes` processes, no HTTP (bench/targets/vision_ceiling.py):
    one batch at a time on torch's own threads, and izzati's default for a batch callback
    (`izzati.threads`): two batches at once per process, each on half its share of the cores.
    Timed a slice at a time, between the servers' rounds, so that it meets the machine as they
    did; its row is the better of the two."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        share = shared_threads(processes)
        each = threads.per_process(threads.AUTO, processes, batches=True).threads or share  # izzati's rule
        self.tries = [(0, 1), (each, max(1, share // each))]  # (torch threads, batches at once)
        self.done: dict[tuple[int, int], dict[str, Any]] = {
            each: {"images": 0, "seconds": 0.0, "batch_ms": []} for each in self.tries
        }
        self.failed = ""

    def slice(self, seconds: float) -> None:
        """Time each setting for `seconds` more."""
        for count, lanes in self.tries:
            argv = [sys.executable, "-m", "bench.targets.vision_ceiling", "--processes", str(self.processes)]
            argv += ["--seconds", str(seconds), "--threads", str(count), "--lanes", str(lanes)]
            run = subprocess.run(argv, env=base_env(), capture_output=True, text=True)
            if run.returncode != 0:
                self.failed = f"failed: {run.stderr[-300:]}"
                return
            data = json.loads(run.stdout.strip().splitlines()[-1])
            total = self.done[(count, lanes)]
            total["images"] += data["images"]
            total["seconds"] += data["seconds"]
            total["batch_ms"] += data["batch_ms"]

    def row(self) -> Row:
        if self.failed:
            return Row("ceiling", note=self.failed)
        rows: list[tuple[Row, str]] = []
        for (count, lanes), data in self.done.items():
            batches = data["batch_ms"]
            named = f"{lanes} at once per process, {count} torch threads each" if count else "torch's own threads"
            row = Row(
                "ceiling",
                rps=data["images"] / data["seconds"] if data["seconds"] else 0.0,
                p50_ms=latency.of_values(batches, 50),
                p99_ms=latency.of_values(batches, 99),
                note=f"{data['images']} images in {data['seconds']:.1f} s with {named}; p50/p99: one batch of 8",
            )
            rows.append((row, named))
        best, _ = max(rows, key=lambda tried: tried[0].rps)
        others = [f"{row.rps:.1f}/s with {named}" for row, named in rows if row is not best]
        if others:
            best.note += f" (the other: {', '.join(others)})"
        return best
