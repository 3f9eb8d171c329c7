"""How a job's record changes when a runner starts it and when its callback ends."""

from __future__ import annotations

import time

from ..defaults import JOB_RETRY_DELAY
from .model import TERMINAL, JobChanges, JobFailure, JobRecord, JobStatus, failure

__all__ = ["start_changes", "finish_changes", "MAX_RETRY_DELAY"]

MAX_RETRY_DELAY = 300.0
"""The longest wait before a failed job is run again (the waits double from JOB_RETRY_DELAY)."""


def start_changes(
    record: JobRecord, cancel_requested: bool, max_attempts: int, runner: int | None = None
) -> JobChanges | None:
    """The changes that start the job (running, in the process `runner`), or fail it (its worker
    died `max_attempts` times); None when it is not to run (settled, or its cancel was asked for)."""
    if record["status"] in TERMINAL or cancel_requested:
        return None
    attempt = int(record.get("attempt") or 0) + 1
    deaths = attempt - 1 - int(record.get("retries") or 0)  # starts that ended with no outcome
    if deaths >= max_attempts:
        detail = f"the job's worker died {deaths} times (IZZATI_JOB_MAX_ATTEMPTS={max_attempts})"
        return {"status": JobStatus.FAILED, "error": failure("worker_lost", detail), "finished": time.time()}
    started = time.time()
    return {
        "status": JobStatus.RUNNING,
        "attempt": attempt,
        "started": started,
        "progress": None,
        "retry_at": None,
        "runner": runner,
    }


def finish_changes(
    current: JobRecord, cancel_requested: bool, error: JobFailure | None, retry: bool, retries_allowed: int
) -> JobChanges:
    """The changes when the callback ended: cancelled, queued again to retry (after 1 s, 2 s, 4 s,
    ... while `retries_allowed` lasts and running again may help), failed, or done."""
    now = time.time()
    if current["status"] == JobStatus.CANCELLED or cancel_requested:
        return {"status": JobStatus.CANCELLED, "finished": current.get("finished") or now}
    retries = int(current.get("retries") or 0)
    if error is not None and retry and retries < retries_allowed:
        delay = min(JOB_RETRY_DELAY * 2**retries, MAX_RETRY_DELAY)
        return {"status": JobStatus.QUEUED, "error": error, "retries": retries + 1, "retry_at": now + delay}
    if error is not None:
        return {"status": JobStatus.FAILED, "error": error, "finished": now}
    return {"status": JobStatus.DONE, "finished": now, "progress": current.get("progress")}
