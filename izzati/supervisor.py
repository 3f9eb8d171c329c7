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
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import current_process
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from ._process import backoff, mp_context, process_problem, run_quietly

__all__ = ["Supervisor", "ReadyBoard", "die_with_parent"]

logger = logging.getLogger("izzati")

_PR_SET_PDEATHSIG = 1
_QUICK_DEATH = 60.0


def _restart_delays() -> Any:
    """The pauses before a dead child starts again: 1 s, doubling with each quick death, up to 30 s."""
    return backoff(1.0, 30.0)  # a child that lived longer than this starts again after the shortest pause


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


SETTING_UP, READY, FAILED = 0, 1, 2


def _dispositions() -> dict[int, Any]:
    """This process's signal dispositions (handlers, SIG_DFL, SIG_IGN) that Python can set again."""
    found: dict[int, Any] = {}
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        with contextlib.suppress(ValueError, OSError):
            if (handler := signal.getsignal(sig)) is not None:
                found[sig] = handler
    return found


def _child(
    parent: int,
    dispositions: dict[int, Any],
    state: Synchronized[int],
    setup: Callable[[], None] | None,
    target: Callable[..., Any],
    *args: Any,
    **kwargs: Any,
) -> Any:
    # a restart forks from the running service (uvicorn's handlers in place): start as the first did
    for sig, handler in dispositions.items():
        with contextlib.suppress(ValueError, OSError):
            signal.signal(sig, handler)
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)  # the running server's event loop is not this process's
    die_with_parent(parent)
    # Ctrl+C reaches the whole process group; the parent alone decides then (one SIGTERM at exit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if setup is not None:
        try:
            setup()
        except Exception:
            state.value = FAILED
            logger.exception("%s: setup raised: the process exits", current_process().name)
            sys.exit(1)
    state.value = READY
    return run_quietly(target, *args, **kwargs)


@dataclass
class _Child:
    target: Callable[..., Any]
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    setup: Callable[[], None] | None
    # shared memory: server processes forked later read the current pid and state
    pid: Synchronized[int]
    state: Synchronized[int]
    # the signal handlers of the first start (before the server ran), given to every restart
    dispositions: dict[int, Any] = field(default_factory=_dispositions)
    process: BaseProcess | None = None
    started: float = 0.0
    delays: Any = field(default_factory=lambda: _restart_delays())
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

    def start(
        self,
        target: Callable[..., Any],
        name: str,
        *args: Any,
        setup: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> BaseProcess:
        """Start `target(*args, **kwargs)` in a supervised daemon child process named `name`,
        after `setup()` there (a setup that raises ends the child with exit code 1)."""
        context = mp_context()
        shared = context.Value("i", 0, lock=False), context.Value("i", SETTING_UP, lock=False)
        child = _Child(target, name, args, kwargs, setup, *shared)
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
                found.append(problem + ("; its setup failed (see the log)" if child.state.value == FAILED else ""))
        return found

    def setting_up(self) -> list[str]:
        """A line for each running child whose setup has not finished."""
        return [
            f"{child.name} (pid {child.pid.value}) is setting up"
            for child in self._children
            if child.state.value == SETTING_UP and process_problem(child.pid.value, child.name) is None
        ]

    def alive(self, name: str) -> int:
        """How many children named `name` run now (usable from any process: by pid)."""
        return sum(1 for c in self._children if c.name == name and process_problem(c.pid.value, c.name) is None)

    def stop(self) -> None:
        """Restart nothing from now on (the service is stopping)."""
        self._stopping = True

    def _spawn(self, child: _Child) -> None:
        child.state.value = SETTING_UP
        process = mp_context().Process(
            target=_child,
            args=(os.getpid(), child.dispositions, child.state, child.setup, child.target, *child.args),
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
                child.delays = _restart_delays()
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


class ReadyBoard:
    """Shared memory in which each of `size` server processes says whether its setup is done, so
    any of them can tell a readiness probe about all of them."""

    def __init__(self, size: int) -> None:
        # a slot holds 0 (no process yet), the pid of a process setting up, or minus the pid of a
        # ready one
        self._slots = mp_context().Array("i", max(size, 1))

    def _values(self) -> list[int]:
        return [int(self._slots[index]) for index in range(len(self._slots))]

    def setting_up(self) -> None:
        """This process starts its setup: it takes a slot (a free one, or one of a dead process)."""
        with self._slots.get_lock():
            pid = os.getpid()
            for index, value in enumerate(self._values()):
                if value == 0 or abs(value) == pid or process_problem(abs(value), "") is not None:
                    self._slots[index] = pid
                    return

    def ready(self) -> None:
        """This process finished its setup."""
        with self._slots.get_lock():
            pid = os.getpid()
            for index, value in enumerate(self._values()):
                if value == pid:
                    self._slots[index] = -pid

    def waiting(self) -> list[str]:
        """A line for each server process that is starting or setting up."""
        found = []
        for value in self._values():
            if value == 0:
                found.append("a server process is starting")
            elif value > 0:
                found.append(f"server process (pid {value}) is setting up")
        return found
