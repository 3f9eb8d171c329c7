"""Private helpers shared by several modules."""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import sys

__all__ = ["mp_context"]


def mp_context() -> multiprocessing.context.ForkContext | multiprocessing.context.SpawnContext:
    """Return the one multiprocessing context izzati uses for every process and queue."""
    # fork, not spawn/forkserver: the spec's examples call b.run() at module level with no
    # `if __name__ == "__main__"` guard, which a spawned child would re-execute.
    if sys.platform != "win32":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")
