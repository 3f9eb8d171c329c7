"""Jobs: a request run later by a worker, with status, progress, cancel and a stored result.

Inside a job the callback may call `progress(0.4, "decoding")` and check `cancelled()`; outside a
job both do nothing. The parts: `model` (states and records), `store` (where jobs live),
`service` (submit, status, cancel, result), `runner` (runs queued jobs), `webhook` (`callback_url`).
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import JobProgress
    from .store import JobStore

__all__ = ["progress", "cancelled", "JobContext", "Hangup", "current_job", "current_request"]


@dataclass
class JobContext:
    """What `progress()` and `cancelled()` reach inside a running job."""

    store: JobStore
    job_id: str
    checked_at: float = 0.0
    cancel_seen: bool = False


current_job: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar("izzati_job", default=None)
"""The job the current call runs in, set by the job runner around the callback."""


class Hangup:
    """Whether the client of a request went away (cheap to make: one for every request)."""

    __slots__ = ("gone",)

    def __init__(self) -> None:
        self.gone = False

    def set(self) -> None:
        """The client went away."""
        self.gone = True

    def is_set(self) -> bool:
        """Whether the client went away."""
        return self.gone


current_request: contextvars.ContextVar[Hangup | None] = contextvars.ContextVar("izzati_request", default=None)
"""The request the current call serves; its `Hangup` is set when the client goes away."""

# a cancel flag is read from the store, so a callback polling cancelled() in a tight loop reads it
# at most this often
_CANCEL_POLL = 0.2


def progress(fraction: float | None = None, message: str | None = None) -> None:
    """Report how far the running job is (0 to 1) and what it does; a no-op outside a job."""
    context = current_job.get()
    if context is None:
        return
    value = None if fraction is None else min(1.0, max(0.0, float(fraction)))
    reported: JobProgress = {"fraction": value, "message": message}
    context.store.update(context.job_id, {"progress": reported})
    context.store.add_event(context.job_id, "progress", reported)


def cancelled() -> bool:
    """Whether the client cancelled the running job (checked at most 5 times a second), or hung up
    on the request being served; False elsewhere."""
    context = current_job.get()
    if context is None:
        gone = current_request.get()
        return gone is not None and gone.is_set()
    now = time.monotonic()
    if not context.cancel_seen and now - context.checked_at > _CANCEL_POLL:
        context.checked_at = now
        context.cancel_seen = context.store.cancel_requested(context.job_id)
    return context.cancel_seen
