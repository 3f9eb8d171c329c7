"""`RedisJobStore`: jobs shared through Redis and an object store, so web and workers share no folder.

Every Redis key of a job (`rediskeys.py`) expires `ttl` seconds after its last change (each change
renews them all), so Redis forgets a job by itself. Its files are objects (`ObjectStore`), which
no Redis expiry reaches: the runners' sweep takes the ids last changed more than `ttl` ago from
the index and deletes their objects.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar, cast
from urllib.parse import urlsplit

from ..defaults import JOB_TTL, QUEUE_CONNECT_TIMEOUT, QUEUE_NAME
from ..exceptions import ConfigError, JobStoreUnavailable, QueueUnavailable
from ..queues import check_login
from ..queues._stream import connect, mask_url, retry, text
from .model import JobChanges, JobRecord, JobStatus, ResultMeta, ResultStream, valid_job_id
from .objects import ObjectStore
from .redisevents import RedisEventLog
from .rediskeys import CLAIM, KINDS, MEAN, RELEASE, JobKeys, decode_record
from .store import Decide, FileDescription, JobInput

__all__ = ["RedisJobStore", "open_shared_store"]

T = TypeVar("T")
_SWEEP_BATCH = 500  # jobs deleted per sweep at most: the next sweep takes the rest


class RedisJobStore:
    """Jobs in Redis (records, idempotency keys, cancel flags, progress, events, run times), files in an object store.

    Arguments:
        url: the Redis URL, as for the queue: `redis://`, `rediss://` (TLS), `user:password@`.
        objects: where the input and result files go.
        name: the prefix of every key (`{name}:job:...`).
        ttl: seconds every key of a job lives after the job's last change.
        connect_timeout: how long a call retries while Redis is unreachable (then 503).
    """

    def __init__(
        self,
        url: str,
        objects: ObjectStore,
        *,
        name: str = QUEUE_NAME,
        ttl: float = JOB_TTL,
        connect_timeout: float = QUEUE_CONNECT_TIMEOUT,
    ) -> None:
        self.url = url
        self.objects = objects
        self.client = connect(url, socket_timeout=5.0)
        self.ttl_ms = max(1, round(ttl * 1000))
        self.connect_timeout = connect_timeout
        self.keys = JobKeys(name)
        self._k = self.keys.of
        self._claim = self.client.register_script(CLAIM)
        self._release = self.client.register_script(RELEASE)
        self._mean = self.client.register_script(MEAN)
        log = RedisEventLog(self.client, self.keys, self._call, self.ttl_ms)
        self.add_event, self.events, self.ended_at = log.append, log.read, log.ended_at

    def _call(self, op: Callable[[], T]) -> T:
        """Run `op`, retrying while Redis is unreachable; then `JobStoreUnavailable` (503)."""
        try:
            return cast(T, retry(self.url, op, True, time.monotonic() + self.connect_timeout))
        except QueueUnavailable as exc:
            raise JobStoreUnavailable(f"the job store's {exc}") from exc

    def _pipe(self, queue: Callable[[Any], Any]) -> None:
        """Run the commands `queue(pipe)` puts on a MULTI/EXEC pipeline, retried as one."""

        def run() -> None:
            pipe = self.client.pipeline()  # a fresh one per try: a failed execute() empties its pipeline
            queue(pipe)
            pipe.execute()

        self._call(run)

    def check(self) -> None:
        """Fail with one line naming the setting when Redis or the bucket cannot be used."""
        try:
            check_login(self.url)  # a refused login or an untrusted certificate, said as such
            self._call(self.client.ping)
        except (ConfigError, JobStoreUnavailable) as exc:
            raise ConfigError(f"IZZATI_QUEUE_URL={mask_url(self.url)!r}: {exc}") from None
        self.objects.check()

    def _write(self, pipe: Any, record: JobRecord) -> None:
        """Queue the writes of `record` on `pipe`: it, the renewed expiry of every key of its job, its score."""
        job_id = record["id"]
        pipe.set(self._k("rec", job_id), json.dumps(record), px=self.ttl_ms)
        for kind in KINDS[1:]:
            pipe.pexpire(self._k(kind, job_id), self.ttl_ms)
        if record.get("idempotency_key"):
            pipe.pexpire(self.keys.idempotency(str(record["idempotency_key"])), self.ttl_ms)
        pipe.zadd(self.keys.ids, {job_id: record["updated"]})
        if record["status"] == JobStatus.QUEUED:  # in line from when it was queued (again)
            pipe.zadd(self.keys.queued, {job_id: record["updated"]}, nx=True)
        else:
            pipe.zrem(self.keys.queued, job_id)

    def reserve(self, job_id: str) -> None:
        """Mark the job as being created, and list it for the sweep (its files may come first)."""
        key, now = self._k("rsv", job_id), time.time()
        self._pipe(lambda pipe: (pipe.set(key, 1, px=self.ttl_ms), pipe.zadd(self.keys.ids, {job_id: now})))

    def exists(self, job_id: str) -> bool:
        """Whether the job exists, or is being created."""
        try:
            keys = [self._k("rec", job_id), self._k("rsv", job_id)]
        except KeyError:
            return False
        return int(self._call(lambda: self.client.exists(*keys))) > 0

    def delete(self, job_id: str) -> None:
        """Remove the job: its objects, its keys, its place in the index."""
        self.objects.delete_job(job_id)
        keys = self.keys.all_of(job_id)
        lists = (self.keys.ids, self.keys.queued)
        self._pipe(lambda pipe: (pipe.delete(*keys), *(pipe.zrem(key, job_id) for key in lists)))

    def create(self, job: JobRecord, text: dict[str, Any], files: list[tuple[FileDescription, IO[bytes]]]) -> None:
        """Store a new job: its files as objects (streamed), then its request and record at once."""
        job_id = job["id"]
        described = []
        for index, (description, stream) in enumerate(files):
            name = f"in-{index}"
            self.objects.upload(self.objects.key(job_id, name), stream)
            described.append({**description, "path": name})
        stored = json.dumps({"text": text, "files": described})

        def write(pipe: Any) -> None:
            pipe.set(self._k("in", job_id), stored, px=self.ttl_ms)
            self._write(pipe, job)

        self._pipe(write)

    def _read(self, kind: str, job_id: str) -> Any:
        """The value of a job's key of one kind (None when there is none, or the id is malformed)."""
        if not valid_job_id(job_id):
            return None
        key = self._k(kind, job_id)
        return self._call(lambda: self.client.get(key))

    def get(self, job_id: str) -> JobRecord | None:
        """The job's status record, or None."""
        raw = self._read("rec", job_id)
        return None if raw is None else decode_record(raw)

    def transition(self, job_id: str, decide: Decide) -> JobRecord | None:
        """Apply `decide(record)`'s changes atomically: under WATCH, so a change by another
        process in between makes it decide again on the new record."""
        import redis

        try:
            key = self._k("rec", job_id)
        except KeyError:
            return None

        def attempt() -> JobRecord | None:
            with self.client.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(key)  # type: ignore[no-untyped-call]
                        raw = pipe.get(key)
                        if raw is None:
                            return None
                        record = decode_record(raw)
                        changes = decide(record)
                        if changes is None:  # {} renews `updated` alone (a running job's heartbeat)
                            return record
                        record.update(changes)  # type: ignore[typeddict-item]  # JobChanges: a subset of JobRecord
                        record["updated"] = time.time()
                        pipe.multi()
                        self._write(pipe, record)
                        pipe.execute()
                        return record
                    except redis.WatchError:
                        continue

        return self._call(attempt)

    def update(self, job_id: str, changes: JobChanges) -> JobRecord | None:
        """Change fields of the job's record atomically."""
        return self.transition(job_id, lambda record: changes)

    @contextlib.contextmanager
    def open_input(self, job_id: str) -> Iterator[JobInput]:
        """The job's `text`, and its files downloaded into temporary files of this process
        (unlinked at once: nothing is left behind, even by a killed process)."""
        key = self._k("in", job_id)
        raw = self._call(lambda: self.client.get(key))
        if raw is None:
            raise FileNotFoundError(f"job {job_id}: its input is gone (expired)")
        stored = json.loads(raw)
        with contextlib.ExitStack() as files:
            opened: list[tuple[FileDescription, IO[bytes]]] = []
            for description in stored["files"]:
                sink = files.enter_context(tempfile.TemporaryFile())
                self.objects.download(self.objects.key(job_id, description["path"]), sink)
                sink.seek(0)
                opened.append((description, sink))
            yield stored["text"], opened

    def save_result(self, job_id: str, meta: ResultMeta, body: bytes | None, path: str | None) -> None:
        """Keep the result as an object (a file streamed from `path`), then its description."""
        key = self.objects.key(job_id, "result")
        if path is not None:
            with open(path, "rb") as source:
                self.objects.upload(key, source)
        else:
            self.objects.put(key, body or b"")
        described = json.dumps(meta)
        self._call(lambda: self.client.set(self._k("res", job_id), described, px=self.ttl_ms))

    def load_result(self, job_id: str) -> tuple[ResultMeta, Path | ResultStream] | None:
        """The result's description and its bytes, read from the object store as they are sent."""
        raw = self._read("res", job_id)
        if raw is None:
            return None
        stream = self.objects.open(self.objects.key(job_id, "result"))
        return None if stream is None else (json.loads(raw), stream)

    def request_cancel(self, job_id: str) -> None:
        """Mark the job as cancelled."""
        key = self._k("cancel", job_id)
        self._call(lambda: self.client.set(key, 1, px=self.ttl_ms))

    def cancel_requested(self, job_id: str) -> bool:
        """Whether the job was cancelled."""
        return self._read("cancel", job_id) is not None

    def claim_key(self, key: str, job_id: str) -> str:
        """Bind an idempotency key to a job id, first come first served (atomic: a Lua script)."""
        args: list[str | int] = [job_id, self.ttl_ms, self.keys.prefix]
        return text(self._call(lambda: self._claim(keys=[self.keys.idempotency(key)], args=args)))

    def release_key(self, key: str, job_id: str) -> None:
        """Unbind a key whose job could not be created."""
        self._call(lambda: self._release(keys=[self.keys.idempotency(key)], args=[job_id]))

    def ids(self) -> list[str]:
        """The ids of every job in the index (some may have expired since: `get` says None)."""
        return [text(member) for member in self._call(lambda: self.client.zrange(self.keys.ids, 0, -1))]

    def place(self, job_id: str) -> int | None:
        """How many queued jobs were queued before this one (None: it is not queued): O(log n)."""
        rank: Any = self._call(lambda: self.client.zrank(self.keys.queued, job_id))
        return None if rank is None else int(rank)

    def add_duration(self, seconds: float) -> None:
        """Fold a job's run time into the moving mean."""
        self._call(lambda: self._mean(keys=[self.keys.stats], args=[repr(float(seconds))]))

    def mean_duration(self) -> float | None:
        """About how long a job runs, over the last jobs (None before the first)."""
        raw = self._call(lambda: self.client.get(self.keys.stats))
        return None if raw is None else float(raw)

    def sweep(self, ttl: float) -> int:
        """Delete the jobs last changed more than `ttl` seconds ago: their objects (their Redis
        keys have expired by now, or go too); how many."""
        cutoff = time.time() - ttl
        stale = self._call(lambda: self.client.zrangebyscore(self.keys.ids, "-inf", cutoff, start=0, num=_SWEEP_BATCH))
        return sum(self._remove(text(member)) for member in stale)

    def _remove(self, job_id: str) -> int:
        """Delete a swept job; 1 if this call took it out of the index (another sweep may race)."""
        if valid_job_id(job_id):
            self.objects.delete_job(job_id)
            keys = self.keys.all_of(job_id)
            self._call(lambda: self.client.delete(*keys))
            self._call(lambda: self.client.zrem(self.keys.queued, job_id))
        # out of the index last: a sweep that dies before this is done again by the next one
        return int(self._call(lambda: self.client.zrem(self.keys.ids, job_id)))


def open_shared_store(store_url: str, redis_url: str, **options: Any) -> RedisJobStore:
    """The store `IZZATI_JOB_STORE=s3://bucket/prefix` names, on the queue's Redis; checked now,
    so a wrong URL, bucket or credential stops the service at its start (`ConfigError`)."""
    if urlsplit(redis_url).scheme not in ("redis", "rediss"):
        raise ConfigError(
            f"IZZATI_JOB_STORE={store_url!r} keeps job records in Redis: it needs "
            f"IZZATI_QUEUE_URL=redis://... or rediss://..., not {mask_url(redis_url)!r}"
        )
    store = RedisJobStore(redis_url, ObjectStore(store_url), **options)
    try:
        store.check()
    except ImportError as exc:
        raise ConfigError(f"IZZATI_JOB_STORE={store_url!r} needs boto3: pip install 'izzati[s3]'") from exc
    return store
