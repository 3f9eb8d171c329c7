"""The Redis keys of `RedisJobStore` and the Lua scripts that change them atomically.

Under `{name}:job:` (`name` is the queue name, so services sharing a Redis stay apart):

    rec:<id>       the record (JSON), rewritten by each transition under WATCH/MULTI
    in:<id>        the request: `text` and the files' descriptions (JSON)
    res:<id>       the result's description (JSON)
    cancel:<id>    there when the client cancelled
    ev:<id>        the events, a list (a cursor is how many were read)
    rsv:<id>       there while the job is being created
    key:<sha256>   the job id an idempotency key is bound to
    ids            every job id, scored by its last change: the sweep's index
    stats          the moving mean of job run times

Every key of a job expires `ttl` seconds after its last change (each change renews them all).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .model import JobRecord, JobStatus, valid_job_id

__all__ = ["JobKeys", "KINDS", "CLAIM", "RELEASE", "MEAN", "decode_record"]

KINDS = ("rec", "in", "res", "cancel", "ev", "rsv")
"""The kinds of key a job has (its idempotency key aside)."""

CLAIM = """
local bound = redis.call('GET', KEYS[1])
if bound and redis.call('EXISTS', ARGV[3] .. 'rec:' .. bound, ARGV[3] .. 'rsv:' .. bound) > 0 then
  return bound
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
"""
"""Bind an idempotency key to a job unless it is bound to a job that still exists; the bound id.
KEYS: the key's key. ARGV: job id, ttl in ms, the prefix of a job's keys."""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
"""Unbind an idempotency key (KEYS[1]) if it is still bound to the job ARGV[1]."""

MEAN = """
local mean = tonumber(redis.call('GET', KEYS[1]))
local seconds = tonumber(ARGV[1])
if mean then mean = mean + (seconds - mean) / 20 else mean = seconds end
redis.call('SET', KEYS[1], tostring(mean))
return tostring(mean)
"""
"""Fold a run time (ARGV[1]) into the moving mean at KEYS[1], over about 20 jobs."""


class JobKeys:
    """The names of the keys of the jobs under one prefix."""

    def __init__(self, name: str) -> None:
        self.prefix = f"{name}:job:"
        self.ids = f"{self.prefix}ids"
        self.stats = f"{self.prefix}stats"
        self.queued = f"{self.prefix}queued"  # the queued jobs, scored by when they were queued

    def of(self, kind: str, job_id: str) -> str:
        """A job's key of one kind (`KINDS`); KeyError for a malformed id."""
        if not valid_job_id(job_id):
            raise KeyError(job_id)
        return f"{self.prefix}{kind}:{job_id}"

    def all_of(self, job_id: str) -> list[str]:
        """Every key of a job but its idempotency key."""
        return [self.of(kind, job_id) for kind in KINDS]

    def idempotency(self, key: str) -> str:
        """The key holding the job id an idempotency key is bound to (hashed: a key may be long)."""
        return f"{self.prefix}key:{hashlib.sha256(key.encode()).hexdigest()}"


def decode_record(raw: Any) -> JobRecord:
    """A record as stored (JSON), its status an enum again."""
    record: JobRecord = json.loads(raw)
    record["status"] = JobStatus(record["status"])
    return record
