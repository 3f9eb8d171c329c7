"""What a job is: its states, its status record, its stored result, and how clients see it."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

__all__ = [
    "JobStatus",
    "TERMINAL",
    "JobRecord",
    "JobChanges",
    "JobFailure",
    "JobProgress",
    "ResultMeta",
    "StoredResult",
    "ResultStream",
    "new_job_id",
    "valid_job_id",
    "new_record",
    "failure",
    "public_status",
]

_ID = re.compile(r"[0-9a-f]{32}")


class JobStatus(StrEnum):
    """The states of a job: queued → running → done, failed or cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED})


class JobFailure(TypedDict):
    """Why a job failed: the error reply the synchronous call would have given."""

    error: str
    detail: str
    status_code: int


class JobProgress(TypedDict):
    """What the callback last reported with `progress()`."""

    fraction: float | None
    message: str | None


class JobRecord(TypedDict):
    """A job's status record, as the store keeps it (times are Unix timestamps)."""

    id: str
    status: JobStatus
    attempt: int
    progress: JobProgress | None
    created: float
    started: float | None
    finished: float | None
    error: JobFailure | None
    callback_url: str | None
    idempotency_key: str | None
    updated: float
    """The last change: the store sets it on every transition (and a running job's runner renews it)."""
    retries: int
    """How many times the job was queued again because its callback raised (`IZZATI_JOB_RETRIES`)."""
    retry_at: float | None
    traceparent: NotRequired[str | None]
    """The W3C traceparent of the request that submitted it, when traced (see izzati.tracing)."""
    route: NotRequired[str]
    """The path of the route whose callback runs it (`/` when the service has one route)."""
    model: NotRequired[str | None]
    """The model it runs with, named by the request's `Izzati-Model` header (see izzati.multiplex)."""
    runner: NotRequired[int | None]
    """The pid of the process that started it last (a memory:// server process that dies gives its jobs back)."""


class JobChanges(TypedDict, total=False):
    """Some fields of a `JobRecord`, to change in one transition."""

    status: JobStatus
    attempt: int
    progress: JobProgress | None
    started: float | None
    finished: float | None
    error: JobFailure | None
    retries: int
    retry_at: float | None
    runner: int | None


class ResultMeta(TypedDict):
    """How a stored result is sent back: status, media type and the headers kept."""

    status_code: int
    media_type: str
    headers: list[tuple[str, str]]
    """Every header the reply carried but those recomputed when it is served (in order, repeats kept)."""


def new_job_id() -> str:
    """A fresh job id: 32 hex digits."""
    return uuid.uuid4().hex


def valid_job_id(job_id: str) -> bool:
    """Whether `job_id` has the form of an id (so it can never name a path outside a store)."""
    return bool(_ID.fullmatch(job_id))


def new_record(
    job_id: str,
    *,
    callback_url: str | None = None,
    key: str | None = None,
    traceparent: str | None = None,
    route: str = "/",
    model: str | None = None,
) -> JobRecord:
    """The status record of a job that was just submitted."""
    now = time.time()
    return {
        "id": job_id,
        "status": JobStatus.QUEUED,
        "attempt": 0,
        "progress": None,
        "created": now,
        "started": None,
        "finished": None,
        "error": None,
        "callback_url": callback_url,
        "idempotency_key": key,
        "updated": now,
        "retries": 0,
        "retry_at": None,
        "traceparent": traceparent,
        "route": route,
        "model": model,
    }


def failure(code: str, detail: str, status_code: int = 500) -> JobFailure:
    """A job failure with its error code, sentence and HTTP status."""
    return {"error": code, "detail": detail, "status_code": status_code}


def _iso(value: float | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC).isoformat()


def public_status(record: JobRecord) -> dict[str, Any]:
    """The job's status as clients see it: times in ISO 8601, internal fields left out."""
    error = record.get("error")
    return {
        "id": record["id"],
        "status": str(record["status"]),
        "attempt": record.get("attempt", 0),
        "progress": record.get("progress"),
        "created": _iso(record.get("created")),
        "started": _iso(record.get("started")),
        "finished": _iso(record.get("finished")),
        "error": None if error is None else {"error": error["error"], "detail": error["detail"]},
        "retry_at": _iso(record.get("retry_at")),
        "route": record.get("route", "/"),
        "model": record.get("model"),
        "url": f"/jobs/{record['id']}",
    }


@dataclass(frozen=True)
class StoredResult:
    """A job's result to keep: its description, and its bytes or the file that holds them."""

    meta: ResultMeta
    body: bytes | None = None
    path: str | None = None
    after: Callable[[], Any] | None = None
    """Run once the result is kept (e.g. deleting a `file_return(..., delete_after=True)` file)."""


@dataclass(frozen=True)
class ResultStream:
    """A stored result read while it is sent (from an object store): its size and its chunks.

    Closing `chunks` (a generator) releases the connection it reads from."""

    size: int
    chunks: Iterator[bytes]
