"""The HTTP side of jobs: submit (`POST /jobs`, or `Prefer: respond-async`), status, result, cancel."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import Scope

from .exceptions import BadRequest, HTTPError
from .files import FileReturn
from .jobs import post_status, public_status, submit_job
from .jobstore import TERMINAL, DirectoryJobStore, JobStore
from .queues import MemoryQueue, Queue
from .responses import error_response, json_response

__all__ = ["JobService", "add_job_routes", "wants_async"]


def wants_async(scope: Scope) -> bool:
    """Whether the request asks to be run as a job (`Prefer: respond-async`, RFC 7240)."""
    for key, value in scope["headers"]:
        if key == b"prefer" and b"respond-async" in value.lower():
            return True
    return False


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
        ttl: seconds a finished job is kept.
    """

    def __init__(self, store: JobStore, queue: Queue, *, max_attempts: int = 3, ttl: float = 86400) -> None:
        self.store = store
        self.queue = queue
        self.max_attempts = max_attempts
        self.ttl = ttl

    @classmethod
    def local(cls, directory: str | os.PathLike[str] | None = None, **options: Any) -> JobService:
        """Jobs on this machine: a folder (a fresh temporary one by default) and a memory queue."""
        if directory:
            root = Path(directory)
        else:
            root = Path(tempfile.mkdtemp(prefix="izzati-jobs-"))
            # only this process tree can reach a memory queue, so its jobs end with it; forked
            # children leave through os._exit and never run this
            atexit.register(shutil.rmtree, root, ignore_errors=True)
        return cls(DirectoryJobStore(root), MemoryQueue(), **options)

    async def submit(self, scope: Scope, text: dict[str, Any], files: list[Any]) -> Response:
        """Store and queue the request; answer 202 with the job's status and a Location."""
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        callback_url = headers.get("callback-url") or text.pop("callback_url", None)
        if callback_url is not None:
            if not isinstance(callback_url, str) or urlsplit(callback_url).scheme not in ("http", "https"):
                raise BadRequest("callback_url must be one http:// or https:// URL")
        record = await asyncio.to_thread(
            submit_job,
            self.store,
            self.queue,
            text,
            files,
            idempotency_key=headers.get("idempotency-key") or None,
            callback_url=callback_url,
        )
        status = public_status(record)
        return json_response(status, 202, {"Location": status["url"], "Preference-Applied": "respond-async"})

    def status(self, job_id: str) -> dict[str, Any]:
        """The job's public status, or a 404 error."""
        record = self.store.get(job_id)
        if record is None:
            raise _not_found(job_id)
        return record

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel the job: a queued one never runs, a running one's result is dropped."""
        self.status(job_id)
        self.store.request_cancel(job_id)
        changed: list[bool] = []

        def decide(record: dict[str, Any]) -> dict[str, Any] | None:
            changed.append(record["status"] not in TERMINAL)
            return {"status": "cancelled", "finished": time.time()} if changed[-1] else None

        record = self.store.transition(job_id, decide)
        if record is None:
            raise _not_found(job_id)
        if any(changed) and record.get("callback_url"):
            # a queued job ends here, not in a worker: its final status is sent from here
            threading.Thread(
                target=post_status, args=(record["callback_url"], public_status(record)), daemon=True
            ).start()
        return record

    def result(self, job_id: str) -> Response:
        """What the synchronous call would have answered; 409 while the job is not done."""
        record = self.status(job_id)
        state = record["status"]
        if state == "failed":
            error = record.get("error") or {}
            failure = HTTPError(
                error.get("detail", "the job failed"),
                code=error.get("error", "callback_failed"),
                status_code=int(error.get("status_code", 500)),
            )
            return error_response(failure)
        if state == "cancelled":
            raise _conflict("cancelled", f"job {job_id} was cancelled: it has no result")
        if state != "done":
            raise _conflict("not_done", f"job {job_id} is {state}: ask again later")
        stored = self.store.load_result(job_id)
        if stored is None:
            raise _not_found(job_id)
        meta, path = stored
        return FileReturn(
            path,
            status_code=int(meta.get("status_code", 200)),
            media_type=meta.get("media_type"),
            headers=meta.get("headers") or None,
            stat_result=os.stat(path),
        )


def add_job_routes(app: FastAPI, jobs: JobService) -> None:
    """Register `GET /jobs/{id}`, `GET /jobs/{id}/result` and `DELETE /jobs/{id}`."""

    def guarded(call: Any) -> Response:
        try:
            result = call()
        except HTTPError as exc:
            return error_response(exc)
        return result if isinstance(result, Response) else json_response(public_status(result))

    @app.get("/jobs/{job_id}", summary="A job's status", tags=["jobs"])
    async def job_status(job_id: str) -> Response:
        return await asyncio.to_thread(guarded, lambda: jobs.status(job_id))

    @app.get("/jobs/{job_id}/result", summary="A job's result: what the synchronous call would answer", tags=["jobs"])
    async def job_result(job_id: str) -> Response:
        return await asyncio.to_thread(guarded, lambda: jobs.result(job_id))

    @app.delete("/jobs/{job_id}", status_code=202, summary="Cancel a job", tags=["jobs"])
    async def job_cancel(job_id: str) -> Response:
        response = await asyncio.to_thread(guarded, lambda: jobs.cancel(job_id))
        if response.status_code == 200:
            response.status_code = 202
        return response
