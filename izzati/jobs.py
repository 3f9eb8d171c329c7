"""Jobs: a request run later by a worker, with status, progress, cancel and a stored result.

Inside a job the callback may call `progress(0.4, "decoding")` and check `cancelled()`; outside a
job both do nothing.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import queue as stdlib_queue
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from ._calling import Invoker
from .exceptions import HTTPError, IdempotencyConflict, QueueUnavailable
from .jobstore import TERMINAL, JobStore, new_job_id
from .queues import Queue

__all__ = ["progress", "cancelled", "JobRunner", "submit_job", "new_record", "JobContext"]

logger = logging.getLogger("izzati.jobs")


@dataclass
class JobContext:
    """What `progress()` and `cancelled()` reach inside a running job."""

    store: JobStore
    job_id: str
    checked_at: float = 0.0
    cancel_seen: bool = False


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar("izzati_job", default=None)


def progress(fraction: float | None = None, message: str | None = None) -> None:
    """Report how far the running job is (0 to 1) and what it does; a no-op outside a job."""
    context = _current.get()
    if context is None:
        return
    value = None if fraction is None else min(1.0, max(0.0, float(fraction)))
    context.store.update(context.job_id, progress={"fraction": value, "message": message})


def cancelled() -> bool:
    """Whether the client cancelled the running job (checked at most 5 times a second)."""
    context = _current.get()
    if context is None:
        return False
    now = time.monotonic()
    if not context.cancel_seen and now - context.checked_at > 0.2:
        context.checked_at = now
        context.cancel_seen = context.store.cancel_requested(context.job_id)
    return context.cancel_seen


def new_record(job_id: str, *, callback_url: str | None = None, key: str | None = None) -> dict[str, Any]:
    """The status record of a job that was just submitted."""
    return {
        "id": job_id,
        "status": "queued",
        "attempt": 0,
        "progress": None,
        "created": time.time(),
        "started": None,
        "finished": None,
        "error": None,
        "callback_url": callback_url,
        "idempotency_key": key,
    }


def submit_job(
    store: JobStore,
    queue: Queue,
    text: dict[str, Any],
    files: list[Any],
    *,
    idempotency_key: str | None = None,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """Store the request as a job and queue it; with a known idempotency key, return that job."""
    job_id = new_job_id()
    store.reserve(job_id)
    try:
        if idempotency_key:
            bound = store.claim_key(idempotency_key, job_id)
            if bound != job_id:
                store.delete(job_id)
                return _wait_for_job(store, bound)
        record = new_record(job_id, callback_url=callback_url, key=idempotency_key)
        described = [
            ({"filename": f.filename, "name": f.name, "content_type": f.content_type}, f.stream) for f in files
        ]
        store.create(record, text, described)
        queue.put({"id": job_id})
    except BaseException:
        # nothing half-made stays behind: no inputs on disk, no key pointing at a missing job
        store.delete(job_id)
        if idempotency_key:
            store.release_key(idempotency_key, job_id)
        raise
    return record


def _wait_for_job(store: JobStore, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The job another request is storing under the same idempotency key, once it is stored."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        existing = store.get(job_id)
        if existing is not None:
            return existing
        if not store.exists(job_id) or time.monotonic() > deadline:
            raise IdempotencyConflict(f"a job with this Idempotency-Key ({job_id}) is not stored yet; retry later")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _error(code: str, detail: str, status: int = 500) -> dict[str, Any]:
    return {"error": code, "detail": detail, "status_code": status}


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
        self, invoker: Invoker, store: JobStore, queue: Queue, *, max_attempts: int = 3, ttl: float = 86400
    ) -> None:
        self.invoker = invoker
        self.store = store
        self.queue = queue
        self.max_attempts = max_attempts
        self.ttl = ttl
        self.stopping = threading.Event()
        self._swept = 0.0

    def run(self) -> None:
        """Run jobs until `stop()`."""
        outage = False
        while not self.stopping.is_set():
            self._maybe_sweep()
            try:
                item = self.queue.get(True, 0.5)
            except stdlib_queue.Empty:
                continue
            except QueueUnavailable as exc:
                if not outage:  # once per outage: the broker restarts, the runner waits for it
                    logger.warning("jobs queue unavailable, retrying until it is back: %s", exc)
                outage = True
                self.stopping.wait(0.5)
                continue
            outage = False
            job_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(job_id, str):
                try:
                    self.run_one(job_id)
                except Exception:  # a broken store or disk must not end the runner
                    logger.exception("job %s could not be run", job_id)
            try:
                self.queue.task_done()
            except QueueUnavailable:
                pass  # not acknowledged: the job comes back, and its record says it is settled

    def stop(self) -> None:
        """Stop after the current job."""
        self.stopping.set()

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

    def _start(self, record: dict[str, Any]) -> dict[str, Any] | None:
        if record["status"] in TERMINAL or self.store.cancel_requested(record["id"]):
            return None
        attempt = int(record.get("attempt") or 0) + 1
        if attempt > self.max_attempts:
            detail = f"the job's worker died {attempt - 1} times (IZZATI_JOB_MAX_ATTEMPTS={self.max_attempts})"
            return {"status": "failed", "error": _error("worker_lost", detail), "finished": time.time()}
        return {"status": "running", "attempt": attempt, "started": time.time(), "progress": None}

    def run_one(self, job_id: str) -> None:
        """Run one job (or settle it, if it was cancelled or tried too often)."""
        decided: dict[str, Any] = {}

        def start(record: dict[str, Any]) -> dict[str, Any] | None:
            decided.update(self._start(record) or {})
            return decided

        record = self.store.transition(job_id, start)
        if record is None:
            return
        if decided.get("status") != "running":
            if record["status"] in TERMINAL and decided:
                self._notify(record)
            return
        text, described = self.store.load_input(job_id)
        from .files import UploadedFile  # here, so a worker with no jobs never imports starlette

        uploads = [
            UploadedFile(open(path, "rb"), d["filename"], name=d["name"], content_type=d["content_type"])
            for d, path in described
        ]
        token = _current.set(JobContext(self.store, job_id))
        try:
            outcome = self._call(job_id, text, uploads)
        finally:
            _current.reset(token)
            for upload in uploads:
                upload.close()
        final = self.store.transition(job_id, lambda current: self._finish(job_id, current, outcome))
        if final is not None:
            self._notify(final)

    def _call(self, job_id: str, text: dict[str, Any], uploads: list[Any]) -> dict[str, Any]:
        from starlette.responses import Response

        from .responses import RawResponse, render

        try:
            result = self.invoker.call_sync(text, uploads)
            response = render(result)
        except HTTPError as exc:
            return {"error": _error(exc.code, exc.detail, exc.status_code)}
        except Exception as exc:
            logger.exception("job %s: the callback raised %s", job_id, type(exc).__name__)
            return {"error": _error("callback_failed", f"the callback raised {type(exc).__name__}")}
        if self.store.cancel_requested(job_id):
            return {}
        if isinstance(response, RawResponse):
            meta = {"status_code": response.status_code, "media_type": response.media_type.decode(), "headers": {}}
            self.store.save_result(job_id, meta, response.body, None)
            return {"ok": True}
        assert isinstance(response, Response)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in response.raw_headers}
        meta = {
            "status_code": response.status_code,
            "media_type": headers.get("content-type", "application/octet-stream"),
            "headers": {k: v for k, v in headers.items() if k in ("content-disposition",)},
        }
        path = getattr(response, "path", None)
        if path is not None:  # file_return: keep a copy, the original may be temporary
            self.store.save_result(job_id, meta, None, os.fspath(path))
            background = getattr(response, "background", None)
            if background is not None:
                background.func(*background.args, **background.kwargs)  # e.g. delete_after
        else:
            self.store.save_result(job_id, meta, bytes(getattr(response, "body", b"")), None)
        return {"ok": True}

    def _finish(self, job_id: str, current: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        if current["status"] == "cancelled" or self.store.cancel_requested(job_id):
            return {"status": "cancelled", "finished": current.get("finished") or now}
        if "error" in outcome:
            return {"status": "failed", "error": outcome["error"], "finished": now}
        return {"status": "done", "finished": now, "progress": current.get("progress")}

    def _notify(self, record: dict[str, Any]) -> None:
        url = record.get("callback_url")
        if not url:
            return
        threading.Thread(target=post_status, args=(url, public_status(record)), daemon=True).start()


def public_status(record: dict[str, Any]) -> dict[str, Any]:
    """The job's status as clients see it: times in ISO 8601, internal fields left out."""
    from datetime import UTC, datetime

    def iso(value: Any) -> str | None:
        return None if value is None else datetime.fromtimestamp(float(value), UTC).isoformat()

    error = record.get("error")
    return {
        "id": record["id"],
        "status": record["status"],
        "attempt": record.get("attempt", 0),
        "progress": record.get("progress"),
        "created": iso(record.get("created")),
        "started": iso(record.get("started")),
        "finished": iso(record.get("finished")),
        "error": None if error is None else {"error": error["error"], "detail": error["detail"]},
        "url": f"/jobs/{record['id']}",
    }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post_status(url: str, status: dict[str, Any], attempts: int = 5, first_delay: float = 0.5) -> bool:
    """POST the final status as JSON to `url`, retrying with exponential backoff."""
    body = json.dumps(status).encode()
    delay = first_delay
    # redirects are not followed: the status goes to the URL the client gave, nowhere else
    opener = urllib.request.build_opener(_NoRedirect)
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with opener.open(request, timeout=10) as response:
                if 200 <= response.status < 300:
                    return True
        except Exception as exc:  # any failure is retried the same way
            logger.warning("callback_url %s: attempt %d failed: %s", url, attempt, exc)
        if attempt < attempts:
            time.sleep(delay)
            delay *= 2
    logger.error("callback_url %s: giving up after %d attempts", url, attempts)
    return False
