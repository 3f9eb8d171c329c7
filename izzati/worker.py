"""`background()`: a target fed by a queue, in its own process; `run_worker`: the worker loop of a
worker process, stopping between items."""

from __future__ import annotations

import logging
import queue as stdlib_queue
import signal
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from . import defaults, tracing
from ._process import STOP_SIGNALS, mp_context, run_quietly, signals_handled
from .exceptions import QueueUnavailable, WorkerStopped
from .metrics import RECORDER
from .queues import Queue, resolve_queue

__all__ = ["background", "run_worker", "StoppableQueue"]

logger = logging.getLogger("izzati.worker")


def background(
    target: Callable[..., Any],
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    queue: Queue | str | None = None,
    daemon: bool = True,
) -> tuple[BaseProcess, Queue]:
    """Start `target(q, *args, **kwargs)` in a new process and return `(process, q)`.

    `q` is an in-process multiprocessing queue unless `queue` gives another one or a queue URL
    (`redis://...`), so the same worker code runs across containers.
    """
    if not callable(target):
        raise TypeError(f"background target must be callable, not {type(target).__name__}")
    q = resolve_queue(queue)
    process = mp_context().Process(
        target=run_quietly,
        args=(target, q, *tuple(args)),
        kwargs=dict(kwargs or {}),
        daemon=daemon,
        name=f"izzati-background-{getattr(target, '__name__', 'target')}",
    )
    process.start()
    return process, q


class StoppableQueue:
    """The queue a worker target sees: once `stop()` is called, `get()` acknowledges the previous
    item and raises `WorkerStopped`, so the target's loop ends between items."""

    def __init__(self, queue: Queue, poll: float = 0.5, *, traced: bool = True) -> None:
        self.queue = queue
        self.spans = tracing.Consumer() if traced else None
        self.poll = poll
        self.stopping = threading.Event()
        self.outage = False
        self.name = str(getattr(queue, "name", "memory"))

    def stop(self) -> None:
        """Ask the worker to stop at its next `get()`."""
        self.stopping.set()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Take the next item, or raise `WorkerStopped` once a stop was asked for."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.stopping.is_set():
                self.task_done()  # the item the target just finished
                raise WorkerStopped(0)
            if not block:
                return self.queue.get(False)
            wait = self.poll if deadline is None else min(self.poll, max(0.0, deadline - time.monotonic()))
            try:
                item = self.queue.get(True, wait)
            except stdlib_queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                continue
            except QueueUnavailable as exc:
                # the broker is down (a restart, a network blip): wait for it, as a worker should
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                if not self.outage:
                    logger.warning("queue unavailable, retrying until it is back: %s", exc)
                self.outage = True
                self.stopping.wait(self.poll)
                continue
            if self.outage:
                logger.info("queue available again")
                self.outage = False
            RECORDER.took(self.name)
            if self.spans is not None and tracing.ACTIVE:
                # the item's span runs until the next get() or task_done(): the worker's processing
                attributes = {"messaging.destination.name": self.name, "messaging.operation.type": "process"}
                self.spans.begin(f"process {self.name}", getattr(self.queue, "traceparent", None), attributes)
            return item

    def task_done(self) -> None:
        """Acknowledge the items taken (and end the span of the item worked on)."""
        if self.spans is not None:
            self.spans.end()
        self.queue.task_done()

    def get_nowait(self) -> Any:
        """Take the next item at once (or raise `queue.Empty` / `WorkerStopped`)."""
        return self.get(False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)


def run_worker(
    target: Callable[..., Any],
    queue: Queue,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    grace: float = defaults.GRACEFUL_TIMEOUT,
    on_stop: Callable[[], None] | None = None,
    stop_signals: Collection[int] = STOP_SIGNALS,
) -> None:
    """Run `target(q, *args, **kwargs)` in this process, stopping gracefully on SIGTERM/SIGINT.

    The first signal lets the current item finish (up to `grace` seconds; the next `q.get()` ends
    the loop); past the grace period, or on a second signal, the target is interrupted and its
    unacknowledged item goes back to the queue for another worker. `on_stop` is called at the
    first signal (to stop other loops of the process too). A worker whose parent stops it passes
    `stop_signals=(SIGTERM,)`: Ctrl+C reaches the whole process group, and the parent alone
    decides then, with one SIGTERM.
    """
    stoppable = StoppableQueue(queue)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise WorkerStopped(0)

    def request_stop(signum: int, frame: FrameType | None) -> None:
        if stoppable.stopping.is_set():
            logger.warning("second signal: stopping the worker now; its current item goes back to the queue")
            raise WorkerStopped(0)
        logger.info("stopping: the worker finishes its current item (at most %g s)", grace)
        stoppable.stop()
        if on_stop is not None:
            on_stop()
        signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, max(grace, 0.001))

    ignored = signals_handled(signal.SIG_IGN, set(STOP_SIGNALS) - set(stop_signals))
    try:
        with ignored, signals_handled(request_stop, stop_signals):
            try:
                target(stoppable, *tuple(args), **dict(kwargs or {}))
            except WorkerStopped:
                logger.info("worker stopped")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        queue.close()
