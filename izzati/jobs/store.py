"""Where jobs live between the web process and the workers: status, inputs and results.

`JobStore` is the small interface. `DirectoryJobStore` (`dirstore.py`) keeps each job in a
directory that both sides can read (a local folder, or a volume shared by containers);
`RedisJobStore` (`redisstore.py`) keeps records in Redis and files in an object store, so web
and workers share no folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from .events import Event
from .model import JobChanges, JobRecord, ResultMeta, ResultStream

__all__ = ["JobStore", "Placing", "FileDescription", "Decide", "JobInput", "records"]

FileDescription = dict[str, str]
"""An input file's `filename`, `name` (form field) and `content_type`."""
Decide = Callable[[JobRecord], JobChanges | None]
"""Given a job's current record, the changes to make (None or empty: none). It may be called more
than once for one transition (a store whose transactions are optimistic retries it after a
conflicting change), so it only computes: no side effect outlives its last call."""
JobInput = tuple[dict[str, Any], list[tuple[FileDescription, IO[bytes]]]]
"""A job's request: its `text`, and each file's description with a readable, seekable stream."""


class JobStore(Protocol):
    """What the web side and the workers need to share about jobs."""

    def create(self, job: JobRecord, text: dict[str, Any], files: list[tuple[FileDescription, IO[bytes]]]) -> None:
        """Store a new job with its request: `text` and `(description, stream)` per file."""

    def reserve(self, job_id: str) -> None:
        """Make room for a job about to be created (so an idempotency key can point at it)."""

    def exists(self, job_id: str) -> bool:
        """Whether the job exists, or is being created."""

    def delete(self, job_id: str) -> None:
        """Remove the job and its files."""

    def get(self, job_id: str) -> JobRecord | None:
        """The job's status record, or None if there is no such job."""

    def update(self, job_id: str, changes: JobChanges) -> JobRecord | None:
        """Change fields of the job's record atomically; return the new record."""

    def transition(self, job_id: str, decide: Decide) -> JobRecord | None:
        """Atomically, `decide(record)` returns changes (or None: none); apply them and set
        `updated` (`{}` sets only that)."""

    def open_input(self, job_id: str) -> AbstractContextManager[JobInput]:
        """The job's request, its file streams open until the block ends."""

    def save_result(self, job_id: str, meta: ResultMeta, body: bytes | None, path: str | None) -> None:
        """Keep the result: JSON/bytes in `body`, or a file at `path` (copied)."""

    def load_result(self, job_id: str) -> tuple[ResultMeta, Path | ResultStream] | None:
        """The result's description, and the file holding it or its bytes as they are read."""

    def request_cancel(self, job_id: str) -> None:
        """Mark the job as cancelled by the client."""

    def cancel_requested(self, job_id: str) -> bool:
        """Whether the client asked to cancel the job."""

    def claim_key(self, key: str, job_id: str) -> str:
        """Bind an idempotency key to `job_id` unless bound already; return the bound id."""

    def release_key(self, key: str, job_id: str) -> None:
        """Unbind a key from `job_id` (its job could not be created)."""

    def sweep(self, ttl: float) -> int:
        """Delete jobs, finished or not, last changed more than `ttl` seconds ago; return how many."""

    def ids(self) -> list[str]:
        """The ids of every stored job."""

    def add_duration(self, seconds: float) -> None:
        """Count how long a finished job ran (for the moving average `mean_duration`)."""

    def add_event(self, job_id: str, kind: str, data: Any) -> None:
        """Record an event of the job (see `izzati.jobs.events`)."""

    def events(self, job_id: str, after: int = 0) -> list[Event]:
        """The job's events after the cursor `after` (`BadCursor` for one never given)."""

    def ended_at(self, job_id: str, cursor: int) -> bool:
        """Whether the event that ends at the cursor `cursor` is the job's final one."""

    def mean_duration(self) -> float | None:
        """About how long a job runs, over the last jobs (None before the first)."""


@runtime_checkable
class Placing(Protocol):
    """A store that keeps its queued jobs in line, so a job's place costs no read of the queue."""

    def place(self, job_id: str) -> int | None:
        """How many queued jobs are ahead of this one (None: it is not queued)."""


def records(store: JobStore) -> Iterator[JobRecord]:
    """Every stored job's record (a job that expires while this runs is left out)."""
    for job_id in store.ids():
        record = store.get(job_id)
        if record is not None:
            yield record
