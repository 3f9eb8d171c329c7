"""A job's events, for `GET /jobs/<id>/events`: what happened to it, in order, resumable.

Each event is `(cursor, kind, data)`: `kind` is `queued`, `running`, `progress`, `item` (what a
streaming callback yielded), `result` (a JSON result, or where to fetch it) or the final state
(`done`, `failed`, `cancelled`). The cursor is where the next event starts, so a client that
reconnects with `Last-Event-ID: <cursor>` misses nothing and sees nothing twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["EventLog", "Event", "FINAL"]

Event = tuple[int, str, Any]
FINAL = frozenset({"done", "failed", "cancelled"})


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
                events.seek(max(after, 0))
                data = events.read()
        except (KeyError, FileNotFoundError):
            return []
        found: list[Event] = []
        cursor = max(after, 0)
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):  # still being written
                break
            cursor += len(line)
            entry = json.loads(line)
            found.append((cursor, entry["event"], entry["data"]))
        return found
