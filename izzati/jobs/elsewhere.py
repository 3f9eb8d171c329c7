"""Jobs of routes another worker runs: a worker told to run some routes (IZZATI_WORKER_ROUTES)
puts a job of another route back on the jobs queue, untouched (still `queued`, its attempt not
counted), for a worker that runs that route. A job of a route no worker of the service knows
still fails with `unknown_route` (the runner's rule)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..exceptions import QueueUnavailable

if TYPE_CHECKING:
    from .runner import JobRunner

__all__ = ["give_back"]

logger = logging.getLogger("izzati.jobs")

PAUSE = 0.5
"""Seconds a worker waits after taking only jobs of other routes (they would come straight back)."""


def give_back(runner: JobRunner, job_ids: list[str]) -> list[str]:
    """The ids among `job_ids` this runner runs; the others are put back on the queue (and, when
    none is left, the queue entry is acknowledged and the runner pauses)."""
    own: list[str] = []
    for job_id in job_ids:
        record = runner.store.get(job_id)
        route = (record.get("route") if record is not None else None) or "/"
        if route not in runner.elsewhere:
            own.append(job_id)
            continue
        try:
            runner.queue.queue.put({"id": job_id})
        except QueueUnavailable:
            own.append(job_id)  # not given back: run it here rather than lose it (unknown_route)
            continue
        logger.debug("job %s is for route %s, run by another worker: put back on the queue", job_id, route)
    if not own and job_ids:
        try:
            runner.queue.task_done()
        except QueueUnavailable:
            pass  # not acknowledged: the entry comes back, and is given back again
        time.sleep(PAUSE)
    return own
