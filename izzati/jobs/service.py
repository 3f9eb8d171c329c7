"""The jobs of one service: submit, status, cancel and result, whatever speaks HTTP in front."""

from __future__ import annotations

import atexit
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .. import tracing
from .._process import backoff
from ..defaults import JOB_MAX_ATTEMPTS, JOB_RETRIES, JOB_TTL
from ..exceptions import HTTPError, IdempotencyConflict, JobStoreUnavailable, Overloaded
from ..queues import Listing, MemoryQueue, Monitored, Queue
from .dirstore import DirectoryJobStore
from .model import (
    TERMINAL,
    JobChanges,
    JobRecord,
    JobStatus,
    ResultMeta,
    ResultStream,
    new_job_id,
    new_record,
    public_status,
)
from .store import FileDescription, JobStore, Placing, records
from .webhook import check_callback_url, notify

if TYPE_CHECKING:
    from ..invoker import Invoker
    from .runner import JobRunner

__all__ = ["JobService"]

logger = logging.getLogger("izzati.jobs")


_RUN_PREFIX = "izzati-run-"


def _remove_dead_runs() -> None:
    """Remove the private job folders of runs whose process is gone (SIGKILLed: no atexit ran)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_RUN_PREFIX}*-*"):
        try:
            pid = int(folder.name.removeprefix(_RUN_PREFIX).split("-", 1)[0])
            info = folder.lstat()
            if info.st_uid != os.getuid() or not folder.is_dir() or folder.is_symlink():
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            logger.info("removing %s: the run that made it is gone", folder)
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, OSError):  # not ours, or a live process we may not signal: leave it
            continue


def _not_found(job_id: str) -> HTTPError:
    return HTTPError(f"no job {job_id!r} (unknown, or expired)", code="not_found", status_code=404)


def _conflict(code: str, detail: str) -> HTTPError:
    return HTTPError(detail, code=code, status_code=409)


class JobService:
    """Jobs of one service: where they are stored and the queue that takes them to workers.

    Arguments:
        store: the job store (a `DirectoryJobStore` on a folder both sides can read).
        queue: the jobs queue, separate from the user's `q`.
        max_attempts: how many times a job whose worker died is started before it fails.
        ttl: seconds a job is kept after its last change.
        retries: how many times a job whose callback raised is queued again.
        max_queued: most jobs waiting in the queue; beyond it a submit gets 503 `overloaded`
            with a `Retry-After` from the measured job time (None: no bound).
    """

    def __init__(
        self,
        store: JobStore,
        queue: Queue,
        *,
        max_attempts: int = JOB_MAX_ATTEMPTS,
        ttl: float = JOB_TTL,
        retries: int = JOB_RETRIES,
        max_queued: int | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.max_attempts = max_attempts
        self.ttl = ttl
        self.retries = retries
        self.max_queued = max_queued

    @classmethod
    def local(
        cls,
        directory: str | os.PathLike[str] | None = None,
        *,
        max_attempts: int = JOB_MAX_ATTEMPTS,
        ttl: float = JOB_TTL,
        retries: int = JOB_RETRIES,
        max_queued: int | None = None,
    ) -> JobService:
        """Jobs on this machine: a folder (a fresh temporary one by default) and a memory queue."""
        if directory:
            root = Path(directory)
        else:
            _remove_dead_runs()
            root = Path(tempfile.mkdtemp(prefix=f"{_RUN_PREFIX}{os.getpid()}-"))
            # only this process tree can reach a memory queue, so its jobs end with it; forked
            # children leave through os._exit and never run this
            atexit.register(shutil.rmtree, root, ignore_errors=True)
        store = DirectoryJobStore(root)
        return cls(store, MemoryQueue(), max_attempts=max_attempts, ttl=ttl, retries=retries, max_queued=max_queued)

    def runner(
        self, invoker: Invoker, routes: Mapping[str, Invoker] | None = None, elsewhere: Collection[str] = ()
    ) -> JobRunner:
        """A runner of these jobs, calling the callback as `invoker` does (or as the invoker of
        each job's route, with several `routes`); jobs of the `elsewhere` routes are left to others."""
        from .runner import JobRunner

        return JobRunner(invoker, self, routes, elsewhere)

    def submit(
        self,
        text: dict[str, Any],
        files: list[Any],
        *,
        idempotency_key: str | None = None,
        callback_url: Any = None,
        route: str = "/",
        model: str | None = None,
    ) -> JobRecord:
        """Store the request as a job of the route at `route` (for the model `model` of a
        multiplexed callback) and queue it; with a known idempotency key, return that job."""
        if callback_url is not None:
            check_callback_url(callback_url)
        if self.max_queued is not None:
            waiting = self.queue.qsize()
            if waiting >= self.max_queued:
                retry_after = max(1, math.ceil(self._eta(waiting - self.max_queued) or 1))
                raise Overloaded(
                    f"{waiting} jobs are waiting (IZZATI_MAX_QUEUED_JOBS={self.max_queued}): "
                    f"try again in {retry_after} s",
                    retry_after=retry_after,
                )
        store = self.store
        job_id = new_job_id()
        store.reserve(job_id)
        try:
            if idempotency_key:
                bound = store.claim_key(idempotency_key, job_id)
                if bound != job_id:
                    store.delete(job_id)
                    return self._wait_for_job(bound)
            traceparent = tracing.current_traceparent()
            record = new_record(
                job_id,
                callback_url=callback_url,
                key=idempotency_key,
                traceparent=traceparent,
                route=route,
                model=model,
            )
            described: list[tuple[FileDescription, IO[bytes]]] = [
                ({"filename": f.filename, "name": f.name, "content_type": f.content_type}, f.stream) for f in files
            ]
            store.create(record, text, described)
            self.announce(record)
            self.queue.put({"id": job_id})
        except BaseException as exc:
            # nothing half-made stays behind: no inputs on disk, no key pointing at a missing job
            # (a store that did not answer is not waited for again: the sweep deletes its part)
            if not isinstance(exc, JobStoreUnavailable):
                store.delete(job_id)
            if idempotency_key:
                store.release_key(idempotency_key, job_id)
            raise
        return record

    def _wait_for_job(self, job_id: str, timeout: float = 30.0) -> JobRecord:
        """The job another request is storing under the same idempotency key, once it is stored."""
        deadline = time.monotonic() + timeout
        delays = backoff(0.01, 0.2)
        while True:
            existing = self.store.get(job_id)
            if existing is not None:
                return existing
            if not self.store.exists(job_id) or time.monotonic() > deadline:
                raise IdempotencyConflict(f"a job with this Idempotency-Key ({job_id}) is not stored yet; retry later")
            time.sleep(next(delays))

    def status(self, job_id: str) -> JobRecord:
        """The job's record, or a 404 error."""
        record = self.store.get(job_id)
        if record is None:
            raise _not_found(job_id)
        return record

    def announce(self, record: JobRecord) -> None:
        """Record the job's new state as an event (named after the state, with its public status)."""
        self.store.add_event(record["id"], str(record["status"]), public_status(record))

    def ended(self, record: JobRecord) -> None:
        """The job ended: its last event, and the POST to its callback_url."""
        self.announce(record)
        notify(record)

    def _runners(self) -> int:
        if isinstance(self.queue, Monitored):
            return max(1, self.queue.workers_alive())
        return 1  # memory://: the web process's one job runner

    def _eta(self, ahead: int) -> float | None:
        """Seconds until a job with `ahead` jobs before it starts: they run `runners` at a time,
        each taking the measured mean (None before a job was measured)."""
        mean = self.store.mean_duration()
        return None if mean is None else mean * (ahead + 1) / self._runners()

    def position(self, job_id: str) -> tuple[int | None, float | None]:
        """A queued job's place in its queue (0: next) and the seconds until it is expected to
        start; (None, None) where the queue cannot be listed (memory://). A Redis store keeps
        its queued jobs in line (O(log n)); a folder's jobs on redis:// read the whole queue."""
        if isinstance(self.store, Placing):
            place = self.store.place(job_id)
        elif isinstance(self.queue, Listing):
            ids = [item.get("id") for item in self.queue.items() if isinstance(item, dict)]
            place = ids.index(job_id) if job_id in ids else None
        else:
            place = None
        return (None, None) if place is None else (place, self._eta(place))

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel the job: a queued one never runs, a running one's result is dropped."""
        self.status(job_id)
        self.store.request_cancel(job_id)
        ended_here = False

        def decide(record: JobRecord) -> JobChanges | None:
            nonlocal ended_here
            ended_here = record["status"] not in TERMINAL
            return {"status": JobStatus.CANCELLED, "finished": time.time()} if ended_here else None

        record = self.store.transition(job_id, decide)
        if record is None:
            raise _not_found(job_id)
        if ended_here:  # a queued job ends here, not in a worker: its last event and status go from here
            self.ended(record)
        return record

    @property
    def runs_here(self) -> bool:
        """Whether the processes that serve also run these jobs (a memory queue: nothing else can
        reach it), where the callback is already set up."""
        return isinstance(self.queue, MemoryQueue)

    def requeue(self, states: Collection[JobStatus], *, retrying: bool = False, runner: int | None = None) -> list[str]:
        """Queue again every job in one of `states` (jobs whose queue entry is known to be gone,
        e.g. after a memory:// process that ran jobs died), and with `retrying` the queued ones
        waiting for a retry (its timer died with the runner); with `runner`, only the jobs that
        process started. Their ids; their next start counts an attempt."""
        requeued = []
        for record in records(self.store):
            if runner is not None and record.get("runner") != runner:
                continue
            waiting = retrying and record["status"] == JobStatus.QUEUED and record.get("retry_at") is not None
            if record["status"] in states or waiting:
                self.queue.put({"id": record["id"]})
                requeued.append(record["id"])
        if requeued:
            logger.warning("queued %d jobs again whose runner was gone: %s", len(requeued), ", ".join(requeued))
        return requeued

    def result(self, job_id: str) -> tuple[ResultMeta, Path | ResultStream]:
        """The stored result of a done job; an error for a failed job (the one the synchronous call
        would have answered), 409 while it is not done, 404 when unknown."""
        record = self.status(job_id)
        state = record["status"]
        if state == JobStatus.FAILED:
            error = record.get("error")
            if error is None:
                raise HTTPError("the job failed", code="callback_failed")
            raise HTTPError(error["detail"], code=error["error"], status_code=int(error["status_code"]))
        if state == JobStatus.CANCELLED:
            raise _conflict("cancelled", f"job {job_id} was cancelled: it has no result")
        if state != JobStatus.DONE:
            raise _conflict("not_done", f"job {job_id} is {state}: ask again later")
        stored = self.store.load_result(job_id)
        if stored is None:
            raise _not_found(job_id)
        return stored
