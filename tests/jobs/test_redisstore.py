"""The Redis + S3 job store (`izzati.jobs.redisstore`), on a real redis-server and a real SeaweedFS:
records, atomic transitions, expiry by Redis, keys, events, results, and the sweep of the objects."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from izzati.jobs.dirstore import DirectoryJobStore
from izzati.jobs.model import JobChanges, JobRecord, JobStatus, ResultStream, new_job_id, new_record
from izzati.jobs.objects import ObjectStore
from izzati.jobs.redisstore import RedisJobStore
from tests.support.jobs import body_bytes
from tests.support.seaweed import SeaweedServer

pytestmark = pytest.mark.redis


def _create(store: RedisJobStore, key: str | None = None, **text: str) -> str:
    job_id = new_job_id()
    store.reserve(job_id)
    if key is not None:
        assert store.claim_key(key, job_id) == job_id
    upload = ({"filename": "a.txt", "name": "file", "content_type": "text/plain"}, io.BytesIO(b"hello"))
    store.create(new_record(job_id, key=key), dict(text), [upload])
    return job_id


def _twin(store: RedisJobStore, **options: Any) -> RedisJobStore:
    """The same store as another process sees it: its own connections, same keys and bucket."""
    objects = ObjectStore(store.objects.url, client=store.objects.client, part_size=store.objects.part_size)
    return RedisJobStore(store.url, objects, name=store.keys.prefix.removesuffix(":job:"), **options)


def test_create_get_and_open_input(redis_job_store: RedisJobStore, seaweed: SeaweedServer, bucket: str) -> None:
    store = redis_job_store
    job_id = _create(store, name="alice")
    assert seaweed.count(bucket, f"jobs/{job_id}/") == 1  # the file is an object, not in Redis
    record = _twin(store).get(job_id)
    assert record is not None and record["status"] is JobStatus.QUEUED and store.exists(job_id)
    with _twin(store).open_input(job_id) as (text, files):
        assert text == {"name": "alice"}
        [(description, stream)] = files
        assert description["filename"] == "a.txt" and stream.read() == b"hello"
    assert stream.closed


def test_unknown_and_malformed_ids(redis_job_store: RedisJobStore) -> None:
    store = redis_job_store
    assert store.get(new_job_id()) is None and store.get("../../etc/passwd") is None
    assert not store.exists("../x") and not store.exists(new_job_id())
    assert store.transition("nope", lambda record: {"attempt": 1}) is None
    assert store.transition(new_job_id(), lambda record: {"attempt": 1}) is None
    assert not store.cancel_requested("nope") and store.events("nope") == [] and store.load_result("nope") is None


def test_transitions_are_atomic_across_processes(redis_job_store: RedisJobStore) -> None:
    job_id = _create(redis_job_store)
    stores = [redis_job_store, _twin(redis_job_store), _twin(redis_job_store), _twin(redis_job_store)]

    def bump(store: RedisJobStore) -> None:
        for _ in range(25):
            store.transition(job_id, lambda record: {"attempt": record["attempt"] + 1})

    threads = [threading.Thread(target=bump, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    record = redis_job_store.get(job_id)
    assert record is not None and record["attempt"] == 100
    assert redis_job_store.transition(job_id, lambda record: None) == record  # no change, same record


def test_a_change_in_between_makes_the_transition_decide_again(redis_job_store: RedisJobStore) -> None:
    job_id = _create(redis_job_store)
    other = _twin(redis_job_store)
    seen: list[int] = []

    def decide(record: JobRecord) -> JobChanges:
        seen.append(record["attempt"])
        if len(seen) == 1:
            other.update(job_id, {"attempt": 5})  # another process changes the job meanwhile
        return {"attempt": record["attempt"] + 1}

    record = redis_job_store.transition(job_id, decide)
    assert seen == [0, 5] and record is not None and record["attempt"] == 6


def test_every_key_of_a_job_expires_a_ttl_after_its_last_change(redis_server: str, object_store: ObjectStore) -> None:
    store = RedisJobStore(redis_server, object_store, name="ttl", ttl=30)
    job_id = _create(store, key="k-1")
    store.add_event(job_id, "queued", {})
    store.request_cancel(job_id)
    client = redis.Redis.from_url(redis_server)
    keys = [f"ttl:job:{kind}:{job_id}" for kind in ("rec", "in", "ev", "cancel", "rsv")]
    keys.append(store.keys.idempotency("k-1"))
    ttls = [client.pttl(key) for key in keys]
    assert all(0 < ttl <= 30_000 for ttl in ttls), ttls
    time.sleep(1.1)
    store.update(job_id, {"progress": {"fraction": 0.5, "message": None}})  # a change renews them all
    assert all(client.pttl(key) > max(ttls) - 200 for key in keys)
    client.close()


def test_redis_forgets_an_expired_job_and_the_sweep_deletes_its_objects(
    redis_server: str, object_store: ObjectStore, seaweed: SeaweedServer, bucket: str
) -> None:
    store = RedisJobStore(redis_server, object_store, name="sweep", ttl=2.0)
    done, recent = _create(store), _create(store)
    store.save_result(done, {"status_code": 200, "media_type": "application/json", "headers": []}, b"{}", None)
    half_made = new_job_id()
    store.reserve(half_made)  # a web process killed while uploading: objects, no record
    object_store.put(object_store.key(half_made, "in-0"), b"partial")
    assert seaweed.count(bucket) == 4
    time.sleep(1.2)
    store.update(recent, {})  # a change keeps it
    between = time.time() - 0.6  # after the first two jobs' last change, before recent's (1.2 s apart)
    time.sleep(1.0)
    assert store.get(done) is None and not store.exists(done) and not store.exists(half_made)  # Redis expired them
    assert store.get(recent) is not None
    assert seaweed.count(bucket) == 4  # ... but not their objects
    # the sweep's age is measured from `between`, so a slow machine cannot age recent past it
    assert store.sweep(ttl=time.time() - between) == 2
    assert seaweed.count(bucket) == 1 and object_store.keys() == [f"jobs/{recent}/in-0"]
    assert store.sweep(ttl=time.time() - between) == 0
    assert store.sweep(ttl=0.0) == 1 and seaweed.count(bucket) == 0 and store.ids() == []


def test_results_json_and_large_files_come_back_streamed(redis_job_store: RedisJobStore, tmp_path: Path) -> None:
    job_id = _create(redis_job_store)
    assert redis_job_store.load_result(job_id) is None
    redis_job_store.save_result(
        job_id, {"status_code": 200, "media_type": "application/json", "headers": []}, b"{}", None
    )
    loaded = redis_job_store.load_result(job_id)
    assert loaded is not None and body_bytes(loaded[1]) == b"{}"
    source = tmp_path / "out.bin"
    source.write_bytes(bytes(range(256)) * 48 * 1024)  # 12 MiB: a multipart upload with 5 MiB parts
    meta = {"status_code": 201, "media_type": "image/png", "headers": [["content-disposition", "x"]]}
    redis_job_store.save_result(job_id, meta, None, str(source))  # type: ignore[arg-type]
    source.unlink()  # a copy was kept
    loaded = _twin(redis_job_store).load_result(job_id)
    assert loaded is not None and loaded[0] == meta and isinstance(loaded[1], ResultStream)
    assert loaded[1].size == 12 * 1024 * 1024 and body_bytes(loaded[1]) == bytes(range(256)) * 48 * 1024


def test_cancel_flag_events_and_mean_duration(redis_job_store: RedisJobStore) -> None:
    store, other = redis_job_store, _twin(redis_job_store)
    job_id = _create(store)
    assert not other.cancel_requested(job_id)
    store.request_cancel(job_id)
    assert other.cancel_requested(job_id)
    store.add_event(job_id, "queued", {"n": 1})
    other.add_event(job_id, "progress", {"n": "ü"})
    events = store.events(job_id)
    assert [(kind, data) for _, kind, data in events] == [("queued", {"n": 1}), ("progress", {"n": "ü"})]
    assert store.events(job_id, events[0][0]) == events[1:]  # resumed from a cursor
    store.add_event(job_id, "done", None)
    assert [kind for _, kind, _ in store.events(job_id, events[-1][0])] == ["done"]
    assert store.mean_duration() is None
    store.add_duration(2.0)
    other.add_duration(4.0)
    assert store.mean_duration() == pytest.approx(2.1)


def test_idempotency_keys_are_the_directory_stores(redis_job_store: RedisJobStore, tmp_path: Path) -> None:
    """The same rules as `DirectoryJobStore`: first come first served; a gone job's key is free."""
    for store in (redis_job_store, DirectoryJobStore(tmp_path / "jobs")):
        first, second = new_job_id(), new_job_id()
        store.reserve(first)
        store.reserve(second)
        assert store.claim_key("k", first) == first
        assert store.claim_key("k", second) == first
        store.release_key("k", second)  # not its key: nothing happens
        assert store.claim_key("k", second) == first
        store.delete(first)
        assert store.claim_key("k", second) == second
        store.release_key("k", second)
        assert store.claim_key("k", first) == first
