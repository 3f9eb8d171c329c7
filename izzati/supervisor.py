"""One supervisor owns a service's process tree: every child declared once, with its policy.

A `Child` names a target to run in its own process, the device it serves on, and its `Policy`:
`RESTART` starts a child that died (a crash, an OOM kill, a callback calling `os._exit`) again
after a pause that doubles with each quick death (1 s up to 30 s); `STOP` stops the whole
service when it exits. Either way a child whose setup failed stops the service with exit code 1:
starting it again would load the same broken model. Each child's `State` lives in shared memory,
so every process of the tree (a readiness probe in any server process) can read all of them.

`Supervisor.run()` watches from the main thread until SIGTERM/SIGINT, then stops the children
(graceful, then terminate, then kill, each step logged). A child dies with its parent, even a
SIGKILLed one: Linux sends it SIGTERM (`PR_SET_PDEATHSIG`), elsewhere a watchdog thread notices
the new parent pid. After uvicorn's `supervisors/multiprocess.py` and cog's worker states.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from types import FrameType
from typing import Any

from . import devices, threads
from ._process import backoff, mp_context, process_problem, run_quietly, signals_handled, stop_processes
from .defaults import GRACEFUL_TIMEOUT

__all__ = ["Supervisor", "Child", "Policy", "State", "die_with_parent", "report"]

logger = logging.getLogger("izzati")

_PR_SET_PDEATHSIG = 1
_QUICK_DEATH = 60.0  # a child that lived longer than this starts again after the shortest pause


class Policy(enum.Enum):
    """What the supervisor does when a child exits."""

    RESTART = "restart with backoff"
    STOP = "stop the service"


class State(enum.IntEnum):
    """Where a child is in its life (an int in shared memory, readable from every process)."""

    STARTING = 0
    SETTING_UP = 1
    READY = 2
    FAILED = 3  # its setup raised: the service stops
    WAITING = 4  # exited; starts again after its pause
    STOPPED = 5


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


_own_state: Synchronized[int] | None = None  # in a child: its slot in the supervisor's shared memory


def report(state: State) -> None:
    """Tell the supervisor where this child is (SETTING_UP, READY, FAILED); a no-op in a process
    no supervisor started."""
    if _own_state is not None:
        _own_state.value = state


@dataclass
class Child:
    """A process of the tree, declared once.

    Arguments:
        name: its process name (in logs and readiness problems).
        target, args, kwargs: what it runs: `target(*args, **kwargs)`.
        policy: what its exit does (see `Policy`).
        device: the device it serves on (`izzati.devices.current()` there); a GPU's
            `CUDA_VISIBLE_DEVICES` is set from it.
        share: its share of the host's cores (`izzati.threads.enter`, there first): the server
            processes on the host and its numeric libraries' threads.
        setup: run there before `target`; a setup that raises is FAILED. Without one the child
            is READY when it starts (a server process reports a failed setup itself: `report`).
    """

    name: str
    target: Callable[..., Any]
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    policy: Policy = Policy.RESTART
    device: str = devices.CPU
    share: threads.Share = threads.Share()
    setup: Callable[[], None] | None = None
    # shared memory, made with the child: processes forked later read its current pid and state
    pid: Synchronized[int] = field(default_factory=lambda: mp_context().Value("i", 0, lock=False))
    state: Synchronized[int] = field(default_factory=lambda: mp_context().Value("i", State.STARTING, lock=False))
    process: BaseProcess | None = None
    started: float = 0.0
    delays: Iterator[float] = field(default_factory=lambda: backoff(1.0, 30.0))
    restart_at: float = 0.0

    def problem(self) -> str | None:
        """Why this child cannot work now, or None (usable from any process: by pid)."""
        problem = process_problem(self.pid.value, self.name)
        if problem is not None and self.state.value == State.FAILED:
            problem += "; its setup failed (see the log)"
        return problem


def _run_child(parent: int, child: Child) -> Any:
    global _own_state
    die_with_parent(parent)
    # a child forked while the parent had other handlers (uvicorn's) gets the defaults back;
    # Ctrl+C reaches the whole process group: the parent alone decides then (one SIGTERM at exit)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)  # an event loop of the parent's is not this process's
    _own_state = child.state
    devices.enter(child.device)
    threads.enter(child.share)
    if child.setup is not None:
        child.state.value = State.SETTING_UP
        try:
            child.setup()
        except Exception:
            child.state.value = State.FAILED
            logger.exception("%s: setup raised: the process exits", child.name)
            os._exit(1)
    child.state.value = State.READY
    return run_quietly(child.target, *child.args, **child.kwargs)


class Supervisor:
    """Starts the declared children, restarts or stops as their policies say, and reports the ones
    not running.

    Arguments:
        children: the process tree.
        on_restart: called in the parent with a child and the pid it had, before it starts again
            (e.g. to give the jobs it held back to the queue).
        grace: seconds the children get to stop (their in-flight work finishing) before SIGKILL.
    """

    def __init__(
        self,
        children: Sequence[Child] = (),
        *,
        on_restart: Callable[[Child, int], None] | None = None,
        grace: float = GRACEFUL_TIMEOUT,
    ) -> None:
        self.children = list(children)
        self.on_restart = on_restart
        self.grace = grace
        self._stop = threading.Event()
        self.exit_code = 0

    def run(self, grace: float | None = None) -> int:
        """Start every child and watch them until a signal or a policy stops the service; the
        service's exit code (128 + the signal, 1 after a failed setup or a STOP child's exit).
        `grace` overrides the constructor's."""
        if grace is not None:
            self.grace = grace

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.exit_code = 128 + signum
            self._stop.set()

        with signals_handled(on_signal):
            try:
                for child in self.children:
                    self._spawn(child)
                logger.info("izzati: %s", ", ".join(f"{c.name} on {c.device}" for c in self.children))
                while not self._stop.wait(0.2):
                    for child in self.children:
                        self._check(child)
            finally:
                self._stop.set()
                stop_processes([c.process for c in self.children if c.process is not None], self.grace + 5)
                for child in self.children:
                    child.state.value = State.STOPPED
        return self.exit_code

    def stop(self, code: int = 0) -> None:
        """Stop the service (from another thread): the children are stopped, `run()` returns."""
        self.exit_code = code
        self._stop.set()

    def problems(self) -> list[str]:
        """A line for each child that is not running now (usable from any process: by pid)."""
        return [problem for child in self.children if (problem := child.problem()) is not None]

    def setting_up(self) -> list[str]:
        """A line for each running child whose setup has not finished."""
        return [
            f"{child.name} (pid {child.pid.value}) is setting up"
            for child in self.children
            if child.state.value in (State.STARTING, State.SETTING_UP) and child.problem() is None
        ]

    def declare(self, *children: Child) -> None:
        """Add children to the tree (before `run()`)."""
        self.children.extend(children)

    def alive(self, prefix: str) -> int:
        """How many children whose name starts with `prefix` run now (usable from any process)."""
        return sum(1 for child in self.children if child.name.startswith(prefix) and child.problem() is None)

    def _spawn(self, child: Child) -> None:
        child.state.value = State.STARTING
        process = mp_context().Process(target=_run_child, args=(os.getpid(), child), daemon=True, name=child.name)
        process.start()
        child.process, child.started = process, time.monotonic()
        child.pid.value = process.pid or 0

    def _check(self, child: Child) -> None:
        process = child.process
        if process is None or process.is_alive() or self._stop.is_set():
            return
        if child.state.value == State.FAILED:
            logger.critical("%s: its setup failed: stopping the service", child.name)
            self.stop(1)
            return
        if child.policy is Policy.STOP:
            logger.error("%s (pid %s) exited with %s: stopping the service", child.name, process.pid, process.exitcode)
            self.stop(1)
            return
        now = time.monotonic()
        if child.state.value != State.WAITING:
            if now - child.started > _QUICK_DEATH:
                child.delays = backoff(1.0, 30.0)
            delay = next(child.delays)
            child.restart_at = now + delay
            child.state.value = State.WAITING
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
        if self.on_restart is not None:
            try:
                self.on_restart(child, process.pid or 0)
            except Exception:
                logger.exception("%s: preparing its restart failed", child.name)
        self._spawn(child)
        logger.info("%s started again (pid %s) on %s", child.name, child.pid.value, child.device)
