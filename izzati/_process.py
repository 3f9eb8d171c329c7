"""Process plumbing, one copy of each: the multiprocessing context, signals, retry delays, stop
escalation, liveness checks and listening sockets."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.context
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any, Generic, TypeVar, overload

from .defaults import GRACEFUL_TIMEOUT

__all__ = [
    "mp_context",
    "run_quietly",
    "line_buffered_output",
    "signals_handled",
    "exit_on_signals",
    "backoff",
    "critical_thread",
    "stop_processes",
    "process_problem",
    "bound_socket",
    "stop_process_group",
    "current_pid",
    "per_process",
]

logger = logging.getLogger("izzati")

T = TypeVar("T")
SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def current_pid() -> int:
    """This process's pid, kept up to date across forks (no system call on each use)."""
    return _pid


class per_process(Generic[T]):  # noqa: N801 - used as a decorator, like `property`
    """A cached attribute made on first use in each process: a forked child makes its own (its
    parent's thread pool, say, has no threads in it), with no system call on each use."""

    def __init__(self, make: Callable[[Any], T]) -> None:
        self.make = make
        self.__doc__ = make.__doc__
        self.key = f"_{make.__name__}_per_process"

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> per_process[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> T | per_process[T]:
        if obj is None:
            return self
        made = obj.__dict__.get(self.key)
        if made is None or made[0] != _pid:
            made = obj.__dict__[self.key] = (_pid, self.make(obj))
        value: T = made[1]
        return value

    def here(self, obj: object) -> T | None:
        """The value made for `obj` in this process, or None (none made here yet)."""
        made = obj.__dict__.get(self.key)
        return made[1] if made is not None and made[0] == _pid else None

    def forget(self, obj: object) -> None:
        """Drop the value made for `obj`: the next use makes a new one."""
        obj.__dict__.pop(self.key, None)


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
def signals_handled(handler: SignalHandler, signals: Iterable[int] = STOP_SIGNALS) -> Iterator[None]:
    """Handle `signals` with `handler` inside the block; the previous handlers come back after it.

    Outside the main thread (where Python cannot set handlers) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _leave(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def exit_on_signals() -> contextlib.AbstractContextManager[None]:
    """Turn SIGTERM/SIGINT into `SystemExit(128 + signal)` while serving.

    uvicorn shuts down gracefully and then re-raises the signal; with the default handler the
    process would die at once, skipping `finally` blocks and atexit, which stops daemon children
    (the background worker, the job runner). A SystemExit lets all of that run.
    """
    return signals_handled(_leave)


def critical_thread(target: Callable[[], Any], name: str, on_death: Callable[[str], None]) -> threading.Thread:
    """Start a daemon thread that the process cannot do without: if `target` raises, the error
    is logged naming the thread and `on_death(name)` decides what the process does (a worker
    exits, so that its supervisor starts a whole new one)."""

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            logger.critical("the %s thread died: %s: %s", name, type(exc).__name__, exc, exc_info=exc)
            on_death(name)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def backoff(first: float, cap: float, factor: float = 2.0) -> Iterator[float]:
    """The delays of a retry loop: `first`, then `factor` times the last, never above `cap`."""
    delay = first
    while True:
        yield delay
        delay = min(delay * factor, cap)


def stop_processes(processes: Iterable[BaseProcess], grace: float) -> None:
    """Stop processes: SIGTERM and wait up to `grace` seconds in all, then SIGKILL; log each step."""
    processes = list(processes)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(grace)
    for process in processes:
        if process.is_alive():
            logger.warning("process %s did not stop within %.0f s: killing it", process.name, grace)
            process.kill()
            process.join()


def process_problem(pid: int, name: str) -> str | None:
    """Why the process `pid` (called `name`) cannot work: not running; None while it runs.
    Usable from any process: it reads /proc by pid."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return f"{name} (pid {pid}) is not running"
    except OSError:  # no /proc here: signal 0 says whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return f"{name} (pid {pid}) is not running"
        return None
    return f"{name} (pid {pid}) is not running" if state in ("Z", "X") else None


def bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host:port` (not listening), with SO_REUSEADDR."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when the group is gone."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_process_group(child: subprocess.Popen[bytes], grace: float = GRACEFUL_TIMEOUT + 10) -> None:
    """Stop a child that leads its own process group, and every process it started: SIGTERM to
    the group, wait up to `grace` seconds for the child (and a little for the rest), then SIGKILL."""
    _signal_group(child.pid, signal.SIGTERM)
    try:
        child.wait(grace)
    except subprocess.TimeoutExpired:
        logger.warning("process %d did not stop within %.0f s: killing it", child.pid, grace)
    deadline = time.monotonic() + 5
    while _signal_group(child.pid, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    _signal_group(child.pid, signal.SIGKILL)
    child.wait()
