"""Private helpers shared by several modules."""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.context
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = ["mp_context", "run_quietly", "exit_on_signals", "line_buffered_output"]


def mp_context() -> multiprocessing.context.ForkContext | multiprocessing.context.SpawnContext:
    """Return the one multiprocessing context izzati uses for every process and queue."""
    # fork, not spawn/forkserver: the spec's examples call b.run() at module level with no
    # `if __name__ == "__main__"` guard, which a spawned child would re-execute.
    if sys.platform != "win32":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def line_buffered_output() -> None:
    """Flush `print()` output line by line, also into a pipe or a file (logs, `docker logs`)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(line_buffering=True)


def run_quietly(target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a child process's target; Ctrl+C (SIGINT to the whole process group) ends it quietly."""
    line_buffered_output()  # the spec's worker prints without flush=True
    try:
        return target(*args, **kwargs)
    except KeyboardInterrupt:
        return None


@contextlib.contextmanager
def exit_on_signals() -> Iterator[None]:
    """Turn SIGTERM/SIGINT into `SystemExit(128 + signal)` while serving.

    uvicorn shuts down gracefully and then re-raises the signal; with the default handler the
    process would die at once, skipping `finally` blocks and atexit, which stops daemon children
    (the background worker, the job runner). A SystemExit lets all of that run.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, leave) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
