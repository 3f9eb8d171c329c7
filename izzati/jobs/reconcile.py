"""Finding jobs whose queue entry is gone, and queueing them again (each runner's sweep)."""

from __future__ import annotations

import logging
import time

from ..queues import Listing, Queue
from .model import TERMINAL, JobChanges, JobRecord, JobStatus
from .store import JobStore, records

__all__ = ["reconcile"]

logger = logging.getLogger("izzati.jobs")


def reconcile(store: JobStore, queue: Queue, *, queued_after: float, running_after: float) -> list[str]:
    """Queue again the unfinished jobs whose queue entry is gone (Redis restarted without
    persistence, a retry whose timer died with its runner); their ids.

    A queued job counts when it has no entry and no change for `queued_after` seconds (a submit
    stores the job before its entry); a running one when its runner has not renewed it for
    `running_after` seconds (a live runner does every 10 s). Its next start
    counts an attempt, so one that keeps getting lost fails with `worker_lost`. Only queues that
    can list their entries (redis://) are checked: with memory:// the web process does this when
    it restarts a dead job runner.
    """
    if not isinstance(queue, Listing):
        return []
    present = {item.get("id") for item in queue.items() if isinstance(item, dict)}
    requeued = []
    for seen in records(store):
        job_id = seen["id"]
        if job_id in present or seen["status"] in TERMINAL:
            continue
        stale = running_after if seen["status"] == JobStatus.RUNNING else queued_after
        if time.time() - float(seen.get("updated") or 0) < stale:
            continue
        if seen["status"] == JobStatus.QUEUED and (seen.get("retry_at") or 0) > time.time():
            continue  # its retry is still to come

        def claim(record: JobRecord, seen: JobRecord = seen) -> JobChanges | None:
            # unchanged since it was read: no other runner has queued it again meanwhile
            return {} if record.get("updated") == seen.get("updated") else None

        claimed = store.transition(job_id, claim)
        if claimed is not None and claimed.get("updated") != seen.get("updated"):
            queue.put({"id": job_id})
            requeued.append(job_id)
    if requeued:
        logger.warning("queued %d jobs again whose queue entry was gone: %s", len(requeued), ", ".join(requeued))
    return requeued
