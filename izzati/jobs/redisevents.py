"""A job's events in Redis: one list per job (`{name}:job:ev:<id>`); the cursor is how many
events were read (see `izzati.jobs.events`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from .events import FINAL, BadCursor, Event
from .rediskeys import JobKeys

__all__ = ["RedisEventLog"]

T = TypeVar("T")


class RedisEventLog:
    """The events of the jobs of one store: `client` and `keys` are the store's, `call` runs a
    Redis operation with the store's retries, `ttl_ms` renews the list's expiry on each event."""

    def __init__(self, client: Any, keys: JobKeys, call: Callable[[Callable[[], Any]], Any], ttl_ms: int) -> None:
        self.client, self.keys, self.call, self.ttl_ms = client, keys, call, ttl_ms

    def append(self, job_id: str, kind: str, data: Any) -> None:
        """Append an event to the job's list."""
        key, line = self.keys.of("ev", job_id), json.dumps({"event": kind, "data": data}, ensure_ascii=False)

        def run() -> None:
            pipe = self.client.pipeline()  # MULTI/EXEC, a fresh one per try
            pipe.rpush(key, line)
            pipe.pexpire(key, self.ttl_ms)
            pipe.execute()

        self.call(run)

    def read(self, job_id: str, after: int = 0) -> list[Event]:
        """The events after the cursor `after` (how many were read before), each with its cursor."""
        try:
            key = self.keys.of("ev", job_id)
        except KeyError:
            if after:
                raise BadCursor(job_id, after) from None
            return []

        def run() -> tuple[int, list[Any]]:
            pipe = self.client.pipeline(transaction=False)
            pipe.llen(key)
            pipe.lrange(key, max(after, 0), -1)
            length, lines = pipe.execute()
            return int(length), lines

        length, lines = self.call(run) if after >= 0 else (0, [])
        if after < 0 or after > length:  # past the end: a cursor never given
            raise BadCursor(job_id, after)
        found = [json.loads(line) for line in lines]
        return [(after + index + 1, entry["event"], entry["data"]) for index, entry in enumerate(found)]

    def ended_at(self, job_id: str, cursor: int) -> bool:
        """Whether the event that ends at `cursor` is the job's final one."""
        if cursor <= 0:
            return False
        key = self.keys.of("ev", job_id)
        line = self.call(lambda: self.client.lindex(key, cursor - 1))
        return line is not None and json.loads(line)["event"] in FINAL
