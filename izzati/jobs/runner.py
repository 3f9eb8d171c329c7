"""`JobRunner`: takes job ids from the jobs queue and runs the callback on each, as a worker does."""

from __future__ import annotations

import contextlib
import json
import logging
import queue as stdlib_queue
import threading
import time
from collections.abc import Collection, Mapping
from typing import Any

from .. import tracing
from .._process import current_pid
from ..exceptions import QueueUnavailable, WorkerStopped
from ..files import UploadedFile
from ..invoker import Invoker
from ..worker import StoppableQueue
from .calls import Started, call_batched, call_each
from .elsewhere import give_back
from .model import (
    TERMINAL,
    JobChanges,
    JobFailure,
    JobRecord,
    JobStatus,
    failure,
    valid_job_id,
)
from .reconcile import reconcile
from .service import JobService
from .transitions import finish_changes, start_changes

__all__ = ["JobRunner"]

_HEARTBEAT = 10.0  # seconds between renewals of a running job's record

logger = logging.getLogger("izzati.jobs")


class JobRunner:
    """Takes job ids from the jobs queue and runs the callback on each, as a worker does.

    Arguments:
        invoker: the same calling convention as the web side (`Backend`'s callback, args, q).
        routes: with several routes, each path's invoker: a job runs with its route's (a job
            recorded without a route runs with `invoker`).
        elsewhere: the paths of routes other workers run: a job of one of them is put back on
            the queue, still queued, for a worker that runs it (see `give_back`).
        jobs: the jobs to run: their store, their queue, and how often to try them (`max_attempts`
            when the worker dies, `retries` when the callback raises, after 1 s, 2 s, 4 s ...)
            and how long to keep them (`ttl`).
    """

    def __init__(
        self,
        invoker: Invoker,
        jobs: JobService,
        routes: Mapping[str, Invoker] | None = None,
        elsewhere: Collection[str] = (),
    ) -> None:
        self.invoker = invoker
        self.elsewhere = frozenset(elsewhere)  # routes other workers run: their jobs go back to the queue
        self.routes = dict(routes) if routes else {"/": invoker}
        self.jobs = jobs
        self.store = jobs.store
        self.queue = StoppableQueue(jobs.queue, traced=False)  # a job's span comes from its record
        self._swept = 0.0
        # sweeping, and looking for jobs whose queue entry is gone, this often
        self.sweep_every = min(60.0, max(1.0, jobs.ttl / 10))

    def run(self) -> None:
        """Set the callback up (once in this process), then run jobs until `stop()`; a broker
        outage is waited out. A batch callback gets up to its `max_size` queued jobs at once."""
        for invoker in {id(i): i for i in (self.invoker, *self.routes.values())}.values():
            invoker.setup()
        tracing.refresh()
        try:
            while True:
                self._maybe_sweep()
                job_ids = self._take()
                if self.elsewhere:
                    job_ids = give_back(self, job_ids)
                if not job_ids:
                    continue
                try:
                    self.run_many(job_ids)
                except Exception:  # a broken store or disk must not end the runner
                    logger.exception("job %s could not be run", ", ".join(job_ids))
                try:
                    self.queue.task_done()
                except QueueUnavailable:
                    pass  # not acknowledged: the job comes back, and its record says it is settled
        except WorkerStopped:
            return

    def _take(self) -> list[str]:
        """The next job ids: the first waited for up to 0.5 s; for a batch callback, more until
        the batch is full or its first job has waited the batch's `max_wait_ms`."""
        batch = self.invoker.batch if len(self.routes) == 1 else None  # several routes: one job at a time
        wanted = 1 if batch is None else batch.max_size
        job_ids: list[str] = []
        deadline = 0.0
        while len(job_ids) < wanted:
            timeout = 0.5 if not job_ids else deadline - time.monotonic()
            if job_ids and timeout <= 0:
                break
            try:
                item = self.queue.get(True, timeout)
            except (stdlib_queue.Empty, QueueUnavailable):
                break  # StoppableQueue logs an outage once and waits for the broker
            except WorkerStopped:
                if not job_ids:
                    raise
                break  # run what was taken; the next get() stops
            job_id = item.get("id") if isinstance(item, dict) else None
            if not isinstance(job_id, str) or not valid_job_id(job_id):
                self.queue.reject(f"not a job: {json.dumps(item)[:200]}")  # parked, where the queue can
                continue
            if not job_ids and batch is not None:
                deadline = time.monotonic() + batch.max_wait
            job_ids.append(job_id)
        return job_ids

    def stop(self) -> None:
        """Stop after the current job."""
        self.queue.stop()

    def _maybe_sweep(self) -> None:
        now = time.monotonic()
        if now - self._swept > self.sweep_every:
            self._swept = now
            try:
                removed = self.store.sweep(self.jobs.ttl)
                if removed:
                    logger.info("removed %d expired jobs", removed)
                reconcile(self.store, self.queue.queue, queued_after=self.sweep_every, running_after=3 * _HEARTBEAT)
            except ConnectionError as exc:  # an outage (QueueUnavailable, JobStoreUnavailable): one line
                logger.warning("sweeping jobs failed, tried again in %.0f s: %s", self.sweep_every, exc)
            except Exception:  # anything else is a bug or a broken disk: its traceback
                logger.exception("sweeping jobs failed")

    def run_one(self, job_id: str) -> None:
        """Run one job (or settle it, if it was cancelled or tried too often)."""
        self.run_many([job_id])

    def run_many(self, job_ids: list[str]) -> None:
        """Run these jobs, as one batch for a batch callback (settling those cancelled or tried
        too often instead)."""
        with contextlib.ExitStack() as inputs:  # the jobs' input files, open until the call returned
            started = [job for job in (self._begin(job_id, inputs) for job_id in job_ids) if job is not None]
            if not started:
                return
            alive = threading.Event()
            ids = [job_id for job_id, *_ in started]
            heartbeat = threading.Thread(target=self._heartbeat, args=(ids, alive), name="izzati-job-heartbeat")
            heartbeat.daemon = True
            heartbeat.start()
            try:
                invoker = started[0][3]  # the same for all: several routes take one job at a time
                if invoker.batch is None:
                    outcomes = call_each(self.store, started, self._span)
                else:
                    outcomes = call_batched(self.store, started)
            finally:
                alive.set()
        for job_id, (error, retry, result) in zip(ids, outcomes, strict=True):
            self._complete(job_id, error, retry, result)

    def _begin(self, job_id: str, inputs: contextlib.ExitStack) -> Started | None:
        """Mark the job running and open its input (until `inputs` closes); None when it is not
        to run (settled instead)."""
        decided: JobChanges = {}

        def start(record: JobRecord) -> JobChanges | None:
            nonlocal decided  # a store may decide again after a conflicting change: the last counts
            cancel = self.store.cancel_requested(record["id"])
            decided = start_changes(record, cancel, self.jobs.max_attempts, current_pid()) or {}
            return decided or None

        record = self.store.transition(job_id, start)
        if record is None:
            return None
        if decided.get("status") != JobStatus.RUNNING:
            if record["status"] in TERMINAL and decided:
                self.jobs.ended(record)
            return None
        route = record.get("route") or "/"
        invoker = self.routes.get(route, self.invoker if len(self.routes) == 1 else None)
        if invoker is None:
            detail = f"this worker serves no route {route!r} (it serves {', '.join(self.routes)})"
            self._complete(job_id, failure("unknown_route", detail, 404), False, None)
            return None
        self.jobs.announce(record)
        text, described = inputs.enter_context(self.store.open_input(job_id))
        uploads = [
            UploadedFile(stream, d["filename"], name=d["name"], content_type=d["content_type"])
            for d, stream in described
        ]
        return job_id, text, uploads, invoker, record.get("model")

    def _span(self, job_id: str) -> contextlib.AbstractContextManager[Any]:
        """The job's span, a child of the request that submitted it (tracing on)."""
        if not tracing.ACTIVE:
            return contextlib.nullcontext()
        record = self.store.get(job_id)
        traceparent = record.get("traceparent") if record is not None else None
        carrier = {"traceparent": traceparent} if traceparent else {}
        attributes = {"izzati.job.id": job_id, "messaging.destination.name": self.queue.name}
        attributes[tracing.ROUTE] = (record.get("route") if record is not None else None) or "/"
        return tracing.span(f"process {self.queue.name}", "CONSUMER", attributes, carrier=carrier)

    def _complete(self, job_id: str, error: JobFailure | None, retry: bool, result: Any) -> None:
        """Settle a job that ran: done, failed, or queued again to retry."""

        def finish(current: JobRecord) -> JobChanges:
            cancelled = self.store.cancel_requested(job_id)
            return finish_changes(current, cancelled, error, retry, self.jobs.retries)

        final = self.store.transition(job_id, finish)
        if final is None:
            return
        if final["status"] in (JobStatus.DONE, JobStatus.FAILED) and final["started"] and final["finished"]:
            with contextlib.suppress(OSError):
                self.store.add_duration(final["finished"] - final["started"])
        if final["status"] == JobStatus.QUEUED and final["retry_at"] is not None:
            delay = max(0.0, final["retry_at"] - time.time())
            logger.warning(
                "job %s: the callback failed (attempt %d); trying again in %g s", job_id, final["attempt"], delay
            )
            timer = threading.Timer(delay, self._queue_again, args=(job_id,))
            timer.daemon = True
            timer.start()
            self.jobs.announce(final)
            return
        if final["status"] == JobStatus.DONE and result is not None:
            self.store.add_event(job_id, "result", result)
        self.jobs.ended(final)

    def _heartbeat(self, job_ids: list[str], done: threading.Event) -> None:
        # a running job's record changes at least this often, so a job whose runner is gone can be
        # told from a slow one (see `reconcile`)
        while not done.wait(_HEARTBEAT):
            for job_id in job_ids:
                with contextlib.suppress(Exception):
                    self.store.update(job_id, {})

    def _queue_again(self, job_id: str) -> None:
        try:
            self.queue.put({"id": job_id})
        except Exception as exc:  # the job stays queued without an entry: `reconcile` finds it
            logger.warning("job %s: could not queue it again: %s", job_id, exc)
