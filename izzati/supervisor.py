"""Child processes that a service cannot do without: restarted when they die, gone when it dies.

In memory:// mode the web process runs the worker and the job runner as children. A child that
exits (a crash, an OOM kill, a callback calling `os._exit`) is started again after a pause that
doubles with each quick death (1 s up to 30 s), and every restart is logged. A child dies with
its parent, even a SIGKILLed one: Linux sends it SIGTERM (`PR_SET_PDEATHSIG`), and elsewhere a
watchdog thread notices the new parent pid.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from ._process import backoff, mp_context, process_problem, run_quietly

__all__ = ["Supervisor", "die_with_parent"]

logger = logging.getLogger("izzati")

_PR_SET_PDEATHSIG = 1
_QUICK_DEATH = 60.0  # a child that lived longer than this starts again after the shortest pause


def die_with_parent(parent: int) -> None:
    """Make this process get SIGTERM when `parent` dies (call it first thing in a child)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError):  # not Linux: watch for a new parent instead

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, name="izzati-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the line above took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _child(parent: int, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    die_with_parent(parent)
    # Ctrl+C reaches the whole process group; the parent alone decides then (one SIGTERM at exit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return run_quietly(target, *args, **kwargs)


@dataclass
class _Child:
    target: Callable[..., Any]
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    pid: Synchronized[int]  # shared memory: server processes forked later read the current pid
    process: BaseProcess | None = None
    started: float = 0.0
    delays: Any = field(default_factory=lambda: backoff(1.0, 30.0))
    restart_at: float = 0.0


class Supervisor:
    """Starts children, restarts those that die, and reports the ones not running.

    Arguments:
        on_restart: called in the parent with a child's name before that child starts again
            (e.g. to give the jobs it held back to the queue).
    """

    def __init__(self, on_restart: Callable[[str], None] | None = None) -> None:
        self.on_restart = on_restart
        self._children: list[_Child] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self, target: Callable[..., Any], name: str, *args: Any, **kwargs: Any) -> BaseProcess:
        """Start `target(*args, **kwargs)` in a supervised daemon child process named `name`."""
        child = _Child(target, name, args, kwargs, mp_context().Value("i", 0, lock=False))
        self._spawn(child)
        with self._lock:
            self._children.append(child)
            if self._thread is None:
                # runs before multiprocessing's own exit handler (atexit is last in, first out),
                # which terminates daemon children: those are not deaths to restart
                atexit.register(self.stop)
                self._thread = threading.Thread(target=self._watch, name="izzati-supervisor", daemon=True)
                self._thread.start()
        assert child.process is not None
        return child.process

    def problems(self) -> list[str]:
        """A line for each child that is not running now (usable from any process: by pid)."""
        found = []
        for child in self._children:
            if (problem := process_problem(child.pid.value, child.name)) is not None:
                found.append(problem)
        return found

    def stop(self) -> None:
        """Restart nothing from now on (the service is stopping)."""
        self._stopping = True

    def _spawn(self, child: _Child) -> None:
        process = mp_context().Process(
            target=_child,
            args=(os.getpid(), child.target, *child.args),
            kwargs=child.kwargs,
            daemon=True,
            name=child.name,
        )
        process.start()
        child.process, child.started = process, time.monotonic()
        child.pid.value = process.pid or 0

    def _watch(self) -> None:
        while not self._stopping:
            time.sleep(0.2)
            with self._lock:
                for child in self._children:
                    self._check(child)

    def _check(self, child: _Child) -> None:
        process = child.process
        if self._stopping or process is None:
            return
        if process.is_alive():
            return
        now = time.monotonic()
        if child.restart_at == 0.0:
            if now - child.started > _QUICK_DEATH:
                child.delays = backoff(1.0, 30.0)
            delay = next(child.delays)
            child.restart_at = now + delay
            logger.error(
                "%s (pid %s) exited with %s: starting it again in %.0f s",
                child.name,
                process.pid,
                process.exitcode,
                delay,
            )
            return
        if now < child.restart_at:
            return
        child.restart_at = 0.0
        if self.on_restart is not None:
            with contextlib.suppress(Exception):
                self.on_restart(child.name)
        self._spawn(child)
        logger.info("%s started again (pid %s)", child.name, child.pid.value)
