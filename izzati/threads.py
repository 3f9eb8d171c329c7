"""CPU threads: how many threads the numeric libraries of a server process use when several
server processes share one host's cores.

torch, OpenMP, MKL and OpenBLAS each start one thread per core in every process. N server
processes on C cores then run N × C compute threads, which take turns on the cores: ResNet-18
batched on this project's 2-core machine served 18 images/s from 2 processes with those defaults
and 34 with one thread each (`python -m bench peers --only P4`). `IZZATI_CPU_THREADS` decides:

- `auto` (the default): each server process gets `cores // processes` threads (at least 1), where
  `cores` is what the process may use (its CPU affinity, and a container's CPU quota: cgroup
  `cpu.max`), the libraries counting the machine's cores instead; with one process that may use
  every core of the machine, or with `OMP_NUM_THREADS` set in the environment (the user has
  chosen), the libraries keep their own defaults. A service whose callbacks all take batches and
  leave how many run at once to izzati (`batches=True`) gets half that instead (`cores // processes
  // 2`, at least 1), so each process runs two batches at once, each on half its cores (one batch
  on all of them leaves them idle while it decodes its inputs and at each operation's barrier:
  ResNet-18 batched on one 2-core process, 32-33 images/s so, 34-35 with two batches of one
  thread; two, not one per core, keeps a lone request's batch on half the cores, not on one);
- a number: every server process uses that many;
- `0`: the libraries' own defaults, always.

`enter(share)` runs first thing in each server process, before its callbacks are set up: `limit(n)`
sets the libraries' variables (read by those imported later, e.g. in `setup()`),
`torch.set_num_threads(n)` when torch is already imported, and threadpoolctl's limits on the BLAS
libraries already loaded when threadpoolctl is installed (scikit-learn brings it).

Batches at once (`@izzati.batched`'s `max_concurrent`, left to izzati): `batches_at_once()` runs as
many as keep the process's share of the cores busy without taking turns on them: its cores
(usable cores // server processes) // the threads one batch's library uses (izzati's count, else
OMP_NUM_THREADS, else one per core). One batch with torch's default threads uses every core; with
one thread each, two batches keep two cores busy.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import sys
from pathlib import Path

__all__ = [
    "AUTO",
    "VARIABLES",
    "Share",
    "check",
    "usable_cores",
    "cgroup_cores",
    "per_process",
    "limit",
    "enter",
    "batches_at_once",
]

AUTO = "auto"

VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
"""What the numeric libraries read for their thread count when they load."""

_CGROUP = Path("/sys/fs/cgroup")


@dataclasses.dataclass(frozen=True)
class Share:
    """A server process's share of its host: how many server processes the host runs, and the
    threads izzati gives each one's numeric libraries (None: their own defaults)."""

    processes: int = 1
    threads: int | None = None


_share = Share()


def check(spec: str | int) -> str:
    """`spec` as `auto` or a whole number of threads (0 or more) written out; ValueError otherwise."""
    text = str(spec).strip().lower()
    if text == AUTO:
        return AUTO
    if not text.isdigit():
        raise ValueError(f"{spec!r} is not a thread count: use auto, 0 (the libraries' defaults) or a number such as 4")
    return str(int(text))


def cgroup_cores(root: Path = _CGROUP) -> float | None:
    """The CPUs a container's quota allows (cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us` over
    `cpu.cfs_period_us`), or None when there is no quota."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def usable_cores(root: Path = _CGROUP) -> int:
    """The cores this process may run on: its CPU affinity, capped by a container's CPU quota
    (rounded up: a quota of 1.5 CPUs keeps two cores busy)."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cores(root)
    return max(1, min(affinity, math.ceil(quota))) if quota else max(1, affinity)


def per_process(spec: str | int, processes: int, root: Path = _CGROUP, *, batches: bool = False) -> Share:
    """The share of each of `processes` server processes on this host under `spec`
    (`IZZATI_CPU_THREADS`); its `threads` is None where the libraries keep their own defaults.
    `batches`: their callbacks all take batches, and leave how many run at once to izzati."""
    spec = check(spec)
    if spec == AUTO:
        if os.environ.get("OMP_NUM_THREADS"):
            return Share(processes)
        cores = usable_cores(root)
        if batches:  # two batches at once (`batches_at_once`), each on half the process's cores
            return Share(processes, max(1, cores // processes // 2))
        if processes <= 1 and cores >= (os.cpu_count() or 1):
            return Share(processes)  # the libraries' default: a thread per core, which are all its own
        return Share(processes, max(1, cores // processes))
    return Share(processes, int(spec) or None)


def enter(share: Share) -> None:
    """Make `share` this process's (first thing in a server process, before anything is set up)."""
    global _share
    _share = share
    limit(share.threads)


def _env_threads() -> int | None:
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def batches_at_once(root: Path = _CGROUP) -> int:
    """How many batches this process runs at once when its batch callback leaves it to izzati:
    its cores // the threads one batch uses, at least 1."""
    cores = usable_cores(root)
    own = max(1, cores // max(1, _share.processes))
    per_batch = _share.threads or _env_threads() or cores
    return max(1, own // per_batch)


def limit(count: int | None) -> None:
    """Make this process's numeric libraries use `count` threads (None: leave them as they are)."""
    if count is None:
        return
    for name in VARIABLES:
        os.environ[name] = str(count)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(count)
    loaded = any(name in sys.modules for name in ("numpy", "scipy", "torch"))
    if loaded and importlib.util.find_spec("threadpoolctl") is not None:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        threadpool_limits(count)  # called, not entered: the limits stay for the process's life
