"""`JobRunner`: takes job ids from the jobs queue and runs the callback on each, as a worker does."""

from __future__ import annotations

import json
import logging
import queue as stdlib_queue
import sys
import time
from typing import Any

from ..defaults import JOB_MAX_ATTEMPTS, JOB_TTL
from ..exceptions import HTTPError, QueueUnavailable, WorkerStopped
from ..files import UploadedFile
from ..invoker import Invoker, encode_json
from ..queues import Queue
from ..worker import StoppableQueue
from . import JobContext, current_job
from .model import (
    TERMINAL,
    JobChanges,
    JobFailure,
    JobRecord,
    JobStatus,
    ResultMeta,
    StoredResult,
    failure,
    valid_job_id,
)
from .store import JobStore
from .webhook import notify

__all__ = ["JobRunner", "stored_result"]

logger = logging.getLogger("izzati.jobs")


def _meta(media_type: str) -> ResultMeta:
    return {"status_code": 200, "media_type": media_type, "headers": []}


def stored_result(result: Any) -> StoredResult:
    """What to keep of a callback's return value: the reply the synchronous call would send."""
    if isinstance(result, (bytes, bytearray, memoryview)):
        return StoredResult(_meta("application/octet-stream"), bytes(result))
    if "starlette.responses" in sys.modules:
        # a callback that returns a Response (file_return included) has loaded Starlette already,
        # so this import costs a worker whose callbacks return JSON nothing
        from ..web.responses import stored_response

        stored = stored_response(result)
        if stored is not None:
            return stored
    return StoredResult(_meta("application/json"), encode_json(result))


class JobRunner:
    """Takes job ids from the jobs queue and runs the callback on each, as a worker does.

    Arguments:
        invoker: the same calling convention as the web side (`Backend`'s callback, args, q).
        store: the job store shared with the web side.
        queue: the jobs queue (separate from the user's `q`).
        max_attempts: how many times a job whose worker died is started before it fails.
        ttl: seconds a finished job's result and inputs are kept.
    """

    def __init__(
        self,
        invoker: Invoker,
        store: JobStore,
        queue: Queue,
        *,
        max_attempts: int = JOB_MAX_ATTEMPTS,
        ttl: float = JOB_TTL,
    ) -> None:
        self.invoker = invoker
        self.store = store
        self.queue = StoppableQueue(queue)
        self.max_attempts = max_attempts
        self.ttl = ttl
        self._swept = 0.0

    def run(self) -> None:
        """Run jobs until `stop()`; a broker outage is waited out."""
        try:
            while True:
                self._maybe_sweep()
                try:
                    item = self.queue.get(True, 0.5)
                except (stdlib_queue.Empty, QueueUnavailable):
                    continue  # StoppableQueue logs an outage once and waits for the broker
                job_id = item.get("id") if isinstance(item, dict) else None
                if not isinstance(job_id, str) or not valid_job_id(job_id):
                    self.queue.reject(f"not a job: {json.dumps(item)[:200]}")  # parked, where the queue can
                    continue
                try:
                    self.run_one(job_id)
                except Exception:  # a broken store or disk must not end the runner
                    logger.exception("job %s could not be run", job_id)
                try:
                    self.queue.task_done()
                except QueueUnavailable:
                    pass  # not acknowledged: the job comes back, and its record says it is settled
        except WorkerStopped:
            return

    def stop(self) -> None:
        """Stop after the current job."""
        self.queue.stop()

    def _maybe_sweep(self) -> None:
        now = time.monotonic()
        if now - self._swept > min(60.0, max(1.0, self.ttl / 10)):
            self._swept = now
            try:
                removed = self.store.sweep(self.ttl)
                if removed:
                    logger.info("removed %d expired jobs", removed)
            except OSError:
                logger.exception("sweeping expired jobs failed")

    def _start(self, record: JobRecord) -> JobChanges | None:
        if record["status"] in TERMINAL or self.store.cancel_requested(record["id"]):
            return None
        attempt = int(record.get("attempt") or 0) + 1
        if attempt > self.max_attempts:
            detail = f"the job's worker died {attempt - 1} times (IZZATI_JOB_MAX_ATTEMPTS={self.max_attempts})"
            return {"status": JobStatus.FAILED, "error": failure("worker_lost", detail), "finished": time.time()}
        return {"status": JobStatus.RUNNING, "attempt": attempt, "started": time.time(), "progress": None}

    def run_one(self, job_id: str) -> None:
        """Run one job (or settle it, if it was cancelled or tried too often)."""
        decided: JobChanges = {}

        def start(record: JobRecord) -> JobChanges | None:
            decided.update(self._start(record) or {})
            return decided

        record = self.store.transition(job_id, start)
        if record is None:
            return
        if decided.get("status") != JobStatus.RUNNING:
            if record["status"] in TERMINAL and decided:
                notify(record)
            return
        text, described = self.store.load_input(job_id)
        uploads = [
            UploadedFile(open(path, "rb"), d["filename"], name=d["name"], content_type=d["content_type"])
            for d, path in described
        ]
        token = current_job.set(JobContext(self.store, job_id))
        try:
            error = self._call(job_id, text, uploads)
        finally:
            current_job.reset(token)
            for upload in uploads:
                upload.close()
        final = self.store.transition(job_id, lambda current: self._finish(job_id, current, error))
        if final is not None:
            notify(final)

    def _call(self, job_id: str, text: dict[str, Any], uploads: list[UploadedFile]) -> JobFailure | None:
        """Run the callback and keep its result; the failure, if it failed."""
        try:
            stored = stored_result(self.invoker.call_sync(text, uploads))
        except HTTPError as exc:
            return failure(exc.code, exc.detail, exc.status_code)
        except Exception as exc:
            logger.exception("job %s: the callback raised %s", job_id, type(exc).__name__)
            return failure("callback_failed", f"the callback raised {type(exc).__name__}")
        try:
            if not self.store.cancel_requested(job_id):
                self.store.save_result(job_id, stored.meta, stored.body, stored.path)
        finally:
            if stored.after is not None:
                stored.after()  # e.g. file_return(..., delete_after=True)
        return None

    def _finish(self, job_id: str, current: JobRecord, error: JobFailure | None) -> JobChanges:
        now = time.time()
        if current["status"] == JobStatus.CANCELLED or self.store.cancel_requested(job_id):
            return {"status": JobStatus.CANCELLED, "finished": current.get("finished") or now}
        if error is not None:
            return {"status": JobStatus.FAILED, "error": error, "finished": now}
        return {"status": JobStatus.DONE, "finished": now, "progress": current.get("progress")}
