"""`background()`: run a function in a daemon process fed by a queue."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from ._utils import mp_context
from .queues import MemoryQueue, Queue, open_queue

__all__ = ["background"]


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
    if queue is None:
        q: Queue = MemoryQueue()
    elif isinstance(queue, str):
        q = open_queue(queue)
    else:
        q = queue
    process = mp_context().Process(
        target=target,
        args=(q, *tuple(args)),
        kwargs=dict(kwargs or {}),
        daemon=daemon,
        name=f"izzati-background-{getattr(target, '__name__', 'target')}",
    )
    process.start()
    return process, q
