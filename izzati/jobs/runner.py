"""`JobRunner`: takes job ids from the jobs queue and runs the callback on each, as a worker does."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import queue as stdlib_queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ..defaults import JOB_RETRY_DELAY
from ..exceptions import HTTPError, QueueUnavailable, WorkerStopped
from ..files import UploadedFile
from ..invoker import Invoker, encode_json
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
from .reconcile import reconcile
from .service import JobService

__all__ = ["JobRunner", "stored_result"]

_INLINE_RESULT = 64 * 1024  # a JSON result up to this size rides in the `result` event itself
_HEARTBEAT = 10.0  # seconds between renewals of a running job's record
_MAX_RETRY_DELAY = 300.0

logger = logging.getLogger("izzati.jobs")


def _meta(media_type: str) -> ResultMeta:
    return {"status_code": 200, "media_type": media_type, "headers": []}


def _seen(item: Any, on_item: Callable[[Any], None] | None) -> Any:
    if on_item is not None:
        on_item(item)
    return item


async def _collect(items: Any, on_item: Callable[[Any], None] | None) -> list[Any]:
    return [_seen(item, on_item) async for item in items]


def stored_result(result: Any, on_item: Callable[[Any], None] | None = None) -> StoredResult:
    """What to keep of a callback's return value: the reply the synchronous call would send; for
    a generator, the list of what it yields (each item also to `on_item`, as it comes)."""
    if inspect.isgenerator(result):
        result = [_seen(item, on_item) for item in result]
    elif inspect.isasyncgen(result):
        result = asyncio.run(_collect(result, on_item))
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
        jobs: the jobs to run: their store, their queue, and how often to try them (`max_attempts`
            when the worker dies, `retries` when the callback raises, after 1 s, 2 s, 4 s ...)
            and how long to keep them (`ttl`).
    """

    def __init__(self, invoker: Invoker, jobs: JobService) -> None:
        self.invoker = invoker
        self.jobs = jobs
        self.store = jobs.store
        self.queue = StoppableQueue(jobs.queue)
        self._swept = 0.0
        # sweeping, and looking for jobs whose queue entry is gone, this often
        self.sweep_every = min(60.0, max(1.0, jobs.ttl / 10))

    def run(self) -> None:
        """Set the callback up (once in this process), then run jobs until `stop()`; a broker
        outage is waited out."""
        self.invoker.setup()
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
        if now - self._swept > self.sweep_every:
            self._swept = now
            try:
                removed = self.store.sweep(self.jobs.ttl)
                if removed:
                    logger.info("removed %d expired jobs", removed)
                reconcile(self.store, self.queue.queue, queued_after=self.sweep_every, running_after=3 * _HEARTBEAT)
            except Exception:  # a store or broker that fails now is tried again next time
                logger.exception("sweeping jobs failed")

    def _start(self, record: JobRecord) -> JobChanges | None:
        if record["status"] in TERMINAL or self.store.cancel_requested(record["id"]):
            return None
        attempt = int(record.get("attempt") or 0) + 1
        deaths = attempt - 1 - int(record.get("retries") or 0)  # starts that ended with no outcome
        if deaths >= self.jobs.max_attempts:
            detail = f"the job's worker died {deaths} times (IZZATI_JOB_MAX_ATTEMPTS={self.jobs.max_attempts})"
            return {"status": JobStatus.FAILED, "error": failure("worker_lost", detail), "finished": time.time()}
        return {
            "status": JobStatus.RUNNING,
            "attempt": attempt,
            "started": time.time(),
            "progress": None,
            "retry_at": None,
        }

    def run_one(self, job_id: str) -> None:
        """Run one job (or settle it, if it was cancelled or tried too often)."""
        decided: JobChanges = {}

        def start(record: JobRecord) -> JobChanges | None:
            decided.update(self._start(record) or {})
            return decided or None

        record = self.store.transition(job_id, start)
        if record is None:
            return
        if decided.get("status") != JobStatus.RUNNING:
            if record["status"] in TERMINAL and decided:
                self.jobs.ended(record)
            return
        self.jobs.announce(record)
        text, described = self.store.load_input(job_id)
        uploads = [
            UploadedFile(open(path, "rb"), d["filename"], name=d["name"], content_type=d["content_type"])
            for d, path in described
        ]
        token = current_job.set(JobContext(self.store, job_id))
        alive = threading.Event()
        threading.Thread(target=self._heartbeat, args=(job_id, alive), name="izzati-job-heartbeat", daemon=True).start()
        try:
            error, retry, result = self._call(job_id, text, uploads)
        finally:
            alive.set()
            current_job.reset(token)
            for upload in uploads:
                upload.close()
        final = self.store.transition(job_id, lambda current: self._finish(job_id, current, error, retry))
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

    def _heartbeat(self, job_id: str, done: threading.Event) -> None:
        # a running job's record changes at least this often, so a job whose runner is gone can be
        # told from a slow one (see `reconcile`)
        while not done.wait(_HEARTBEAT):
            with contextlib.suppress(Exception):
                self.store.update(job_id, {})

    def _queue_again(self, job_id: str) -> None:
        try:
            self.queue.put({"id": job_id})
        except Exception as exc:  # the job stays queued without an entry: `reconcile` finds it
            logger.warning("job %s: could not queue it again: %s", job_id, exc)

    def _call(
        self, job_id: str, text: dict[str, Any], uploads: list[UploadedFile]
    ) -> tuple[JobFailure | None, bool, Any]:
        """Run the callback and keep its result: the failure, if it failed, whether running it
        again may help (it raised, rather than answering an error on purpose), and the result for
        the events (the JSON itself when small, else where to fetch it)."""

        def item(value: Any) -> None:
            self.store.add_event(job_id, "item", value)

        try:
            stored = stored_result(self.invoker.call_sync(text, uploads), item)
        except HTTPError as exc:
            return failure(exc.code, exc.detail, exc.status_code), False, None
        except Exception as exc:
            logger.exception("job %s: the callback raised %s", job_id, type(exc).__name__)
            return failure("callback_failed", f"the callback raised {type(exc).__name__}"), True, None
        try:
            if not self.store.cancel_requested(job_id):
                self.store.save_result(job_id, stored.meta, stored.body, stored.path)
        finally:
            if stored.after is not None:
                stored.after()  # e.g. file_return(..., delete_after=True)
        small_json = stored.meta["media_type"] == "application/json" and stored.body is not None
        if small_json and len(stored.body or b"") <= _INLINE_RESULT:
            return None, False, {"json": json.loads(stored.body or b"null")}
        return None, False, {"url": f"/jobs/{job_id}/result", "media_type": stored.meta["media_type"]}

    def _finish(self, job_id: str, current: JobRecord, error: JobFailure | None, retry: bool) -> JobChanges:
        now = time.time()
        if current["status"] == JobStatus.CANCELLED or self.store.cancel_requested(job_id):
            return {"status": JobStatus.CANCELLED, "finished": current.get("finished") or now}
        retries = int(current.get("retries") or 0)
        if error is not None and retry and retries < self.jobs.retries:
            delay = min(JOB_RETRY_DELAY * 2**retries, _MAX_RETRY_DELAY)
            return {"status": JobStatus.QUEUED, "error": error, "retries": retries + 1, "retry_at": now + delay}
        if error is not None:
            return {"status": JobStatus.FAILED, "error": error, "finished": now}
        return {"status": JobStatus.DONE, "finished": now, "progress": current.get("progress")}
