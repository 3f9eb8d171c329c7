"""The ``memory://`` queue: a ``multiprocessing`` queue for one process tree."""

from __future__ import annotations

import logging
import multiprocessing.queues
from typing import TYPE_CHECKING, Any

from .._process import mp_context

__all__ = ["MemoryQueue"]

logger = logging.getLogger("izzati.queue")

if TYPE_CHECKING:
    _MPQueue = multiprocessing.queues.Queue[Any]
else:  # not subscriptable at runtime before Python 3.12
    _MPQueue = multiprocessing.queues.Queue


class MemoryQueue(_MPQueue):
    """A ``multiprocessing`` queue on izzati's context, for one machine and one process tree.

    It is exactly a ``multiprocessing.Queue`` (as fast; passed to workers by ``fork``) plus a
    no-op ``task_done()``: it cannot redeliver an item taken by a worker that crashed.
    """

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize, ctx=mp_context())

    def task_done(self) -> None:
        """Do nothing: a memory queue has no acknowledgement."""

    def reject(self, reason: str) -> None:
        """Log that the item last taken is dropped: a memory queue has nowhere to park it."""
        logger.warning("memory queue: dropped an item that cannot be processed: %s", reason)
