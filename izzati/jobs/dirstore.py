"""`DirectoryJobStore`: each job a directory under one folder that web and workers both reach."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .events import EventLog
from .model import JobChanges, JobRecord, JobStatus, ResultMeta, ResultStream, valid_job_id
from .store import Decide, FileDescription, JobInput

__all__ = ["DirectoryJobStore"]


class DirectoryJobStore:
    """Jobs as directories under `root`: `job.json`, `input.json`, inputs, result, cancel marker."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        # inputs are users' uploads: only this user may read them
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.root / "keys").mkdir(mode=0o700, exist_ok=True)
        self._events = EventLog(lambda job_id: self._dir(job_id) / "events.jsonl")
        self.add_event, self.events, self.ended_at = self._events.append, self._events.read, self._events.ended_at

    def _dir(self, job_id: str) -> Path:
        if not valid_job_id(job_id):
            raise KeyError(job_id)
        return self.root / job_id

    @contextlib.contextmanager
    def _locked(self, job_id: str) -> Iterator[Path]:
        directory = self._dir(job_id)
        with open(directory / "lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # web and workers may share the volume
            try:
                yield directory
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _write_json(path: Path, value: Any) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value, ensure_ascii=False))
        os.replace(tmp, path)

    def reserve(self, job_id: str) -> None:
        """Make the job's directory, before its key is claimed and its inputs copied."""
        self._dir(job_id).mkdir(mode=0o700)

    def exists(self, job_id: str) -> bool:
        """Whether the job's directory exists."""
        try:
            return self._dir(job_id).is_dir()
        except KeyError:
            return False

    def delete(self, job_id: str) -> None:
        """Remove the job's directory."""
        shutil.rmtree(self._dir(job_id), ignore_errors=True)

    def create(self, job: JobRecord, text: dict[str, Any], files: list[tuple[FileDescription, IO[bytes]]]) -> None:
        """Store a new job with its request."""
        directory = self._dir(job["id"])
        directory.mkdir(mode=0o700, exist_ok=True)
        described = []
        for index, (description, stream) in enumerate(files):
            name = f"in-{index}"
            if stream.seekable():
                stream.seek(0)
            with open(directory / name, "wb") as out:
                shutil.copyfileobj(stream, out, 1024 * 1024)
            described.append({**description, "path": name})
        self._write_json(directory / "input.json", {"text": text, "files": described})
        self._write_json(directory / "job.json", job)

    def get(self, job_id: str) -> JobRecord | None:
        """The job's status record, or None."""
        try:
            record: JobRecord = json.loads((self._dir(job_id) / "job.json").read_text())
            record["status"] = JobStatus(record["status"])
        except (KeyError, FileNotFoundError, ValueError):
            return None
        return record

    def transition(self, job_id: str, decide: Decide) -> JobRecord | None:
        """Apply `decide(record)`'s changes under the job's lock."""
        try:
            with self._locked(job_id) as directory:
                record = self.get(job_id)
                if record is None:
                    return None
                changes = decide(record)
                if changes is not None:  # {} renews `updated` alone (a running job's heartbeat)
                    record.update(changes)  # type: ignore[typeddict-item]  # JobChanges: a subset of JobRecord
                    record["updated"] = time.time()
                    self._write_json(directory / "job.json", record)
                return record
        except (KeyError, FileNotFoundError):
            return None

    def update(self, job_id: str, changes: JobChanges) -> JobRecord | None:
        """Change fields of the job's record atomically."""
        return self.transition(job_id, lambda record: changes)

    @contextlib.contextmanager
    def open_input(self, job_id: str) -> Iterator[JobInput]:
        """The job's `text` and files, open until the block ends."""
        directory = self._dir(job_id)
        stored = json.loads((directory / "input.json").read_text())
        with contextlib.ExitStack() as files:
            opened: list[tuple[FileDescription, IO[bytes]]] = [
                (d, files.enter_context(open(directory / d["path"], "rb"))) for d in stored["files"]
            ]
            yield stored["text"], opened

    def save_result(self, job_id: str, meta: ResultMeta, body: bytes | None, path: str | None) -> None:
        """Keep the result next to the job."""
        directory = self._dir(job_id)
        tmp = directory / f".result.{os.getpid()}.tmp"
        if path is not None:
            shutil.copyfile(path, tmp)
        else:
            tmp.write_bytes(body or b"")
        os.replace(tmp, directory / "result")
        self._write_json(directory / "result.json", meta)

    def load_result(self, job_id: str) -> tuple[ResultMeta, Path | ResultStream] | None:
        """The result's description and file."""
        try:
            directory = self._dir(job_id)
            meta: ResultMeta = json.loads((directory / "result.json").read_text())
        except (KeyError, FileNotFoundError, ValueError):
            return None
        return meta, directory / "result"

    def request_cancel(self, job_id: str) -> None:
        """Mark the job as cancelled."""
        (self._dir(job_id) / "cancel").touch()

    def cancel_requested(self, job_id: str) -> bool:
        """Whether the job was cancelled."""
        try:
            return (self._dir(job_id) / "cancel").exists()
        except KeyError:
            return False

    def _key_path(self, key: str) -> Path:
        return self.root / "keys" / hashlib.sha256(key.encode()).hexdigest()

    def claim_key(self, key: str, job_id: str) -> str:
        """Bind an idempotency key to a job id, first come first served (atomic: a hard link)."""
        path = self._key_path(key)
        tmp = path.with_name(f".{path.name}.{job_id}")
        tmp.write_text(job_id)
        try:
            for _ in range(2):
                try:
                    os.link(tmp, path)  # creates the key with its content at once, or fails if it exists
                    return job_id
                except FileExistsError:
                    bound = path.read_text().strip()
                if self.exists(bound):
                    return bound
                # the key's job expired or was never stored: the key is free again (one retry, so
                # two requests taking over the same stale key still agree on one job)
                with contextlib.suppress(FileNotFoundError):
                    if path.read_text().strip() == bound:
                        path.unlink()
            return path.read_text().strip()
        finally:
            tmp.unlink(missing_ok=True)

    def release_key(self, key: str, job_id: str) -> None:
        """Unbind a key whose job could not be created."""
        path = self._key_path(key)
        with contextlib.suppress(OSError):
            if path.read_text().strip() == job_id:
                path.unlink()

    def ids(self) -> list[str]:
        """The ids of every stored job."""
        return [entry.name for entry in self.root.iterdir() if valid_job_id(entry.name)]

    def add_duration(self, seconds: float) -> None:
        """Fold a job's run time into `stats.json` (a moving average over about 20 jobs)."""
        path = self.root / "stats.json"
        with open(self.root / "stats.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            mean = self.mean_duration()
            mean = seconds if mean is None else mean + (seconds - mean) / 20
            self._write_json(path, {"mean_duration": mean})

    def mean_duration(self) -> float | None:
        """About how long a job runs, over the last jobs (None before the first)."""
        try:
            return float(json.loads((self.root / "stats.json").read_text())["mean_duration"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def sweep(self, ttl: float) -> int:
        """Delete jobs (with their files), finished or not, whose last change is more than `ttl`
        seconds ago."""
        now = time.time()
        removed = 0
        for directory in self.root.iterdir():
            if not valid_job_id(directory.name):
                continue
            record = self.get(directory.name)
            if record is None:
                # a job that never got its record (a crash mid-create) goes after the ttl too
                changed = directory.stat().st_mtime
            else:  # records stored by izzati 2.0 have no `updated`
                changed = record.get("updated") or record.get("finished") or record["created"]
            if now - float(changed) > ttl:
                shutil.rmtree(directory, ignore_errors=True)
                removed += 1
        for key in (self.root / "keys").iterdir():
            with contextlib.suppress(OSError):
                # a job's directory exists before its key does, so a key without one is stale
                if not key.name.startswith(".") and not (self.root / key.read_text().strip()).exists():
                    key.unlink()
        return removed
