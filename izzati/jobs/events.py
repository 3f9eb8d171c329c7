"""A job's events, for `GET /jobs/<id>/events`: what happened to it, in order, resumable.

Each event is `(cursor, kind, data)`: `kind` is `queued`, `running`, `progress`, `item` (what a
streaming callback yielded), `result` (a JSON result, or where to fetch it) or the final state
(`done`, `failed`, `cancelled`). The cursor is where the next event starts, so a client that
reconnects with `Last-Event-ID: <cursor>` misses nothing and sees nothing twice. A cursor that is
not where an event ends (one the store never gave) is refused: `BadCursor`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..exceptions import BadRequest

__all__ = ["EventLog", "Event", "FINAL", "BadCursor"]

Event = tuple[int, str, Any]
FINAL = frozenset({"done", "failed", "cancelled"})
_BLOCK = 64 * 1024


class BadCursor(BadRequest):
    """A cursor that is not where an event of the job ends."""

    def __init__(self, job_id: str, cursor: int) -> None:
        super().__init__(f"{cursor} is not where an event of job {job_id} ends")


class EventLog:
    """Events as JSON lines in one file per job (`events.jsonl`), appended with O_APPEND: web and
    workers may write at once; the cursor is a byte offset."""

    def __init__(self, path_of: Callable[[str], Path]) -> None:
        self.path_of = path_of

    def append(self, job_id: str, kind: str, data: Any) -> None:
        """Add an event (one write: a line is never torn by another writer)."""
        line = (json.dumps({"event": kind, "data": data}, ensure_ascii=False) + "\n").encode()
        fd = os.open(self.path_of(job_id), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def read(self, job_id: str, after: int = 0) -> list[Event]:
        """The events written after the cursor `after`, each with the cursor past it."""
        try:
            with open(self.path_of(job_id), "rb") as events:
                if after < 0 or after > os.fstat(events.fileno()).st_size or not _line_ends(events, after):
                    raise BadCursor(job_id, after)
                events.seek(after)
                data = events.read()
        except (KeyError, FileNotFoundError):
            if after:
                raise BadCursor(job_id, after) from None
            return []
        found: list[Event] = []
        cursor = after
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):  # still being written
                break
            cursor += len(line)
            entry = json.loads(line)
            found.append((cursor, entry["event"], entry["data"]))
        return found

    def ended_at(self, job_id: str, cursor: int) -> bool:
        """Whether the event that ends at `cursor` is the job's final one (a valid cursor: see `read`)."""
        if cursor <= 0:
            return False
        try:
            with open(self.path_of(job_id), "rb") as events:
                line = b""
                start = cursor - 1  # the event's own newline is not searched for
                while start > 0 and b"\n" not in line:  # back, a block at a time, to the line's start
                    step = min(_BLOCK, start)
                    start -= step
                    events.seek(start)
                    line = events.read(step) + line
                line = line.rsplit(b"\n", 1)[-1]
        except (KeyError, FileNotFoundError):
            return False
        return bool(json.loads(line)["event"] in FINAL)


def _line_ends(events: Any, cursor: int) -> bool:
    """Whether `cursor` (at most the file's size) is the start of the file or just after a newline."""
    if cursor == 0:
        return True
    events.seek(cursor - 1)
    return bool(events.read(1) == b"\n")
