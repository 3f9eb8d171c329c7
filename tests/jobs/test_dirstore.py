"""The directory job store (`izzati.jobs.dirstore`): records, inputs, results, keys, sweeping."""

from __future__ import annotations

import io
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from izzati.jobs.dirstore import DirectoryJobStore
from izzati.jobs.model import JobStatus, new_job_id, new_record


@pytest.fixture
def store(tmp_path: Path) -> DirectoryJobStore:
    return DirectoryJobStore(tmp_path / "jobs")


def _create(store: DirectoryJobStore, **text: str) -> str:
    job_id = new_job_id()
    store.reserve(job_id)
    upload = ({"filename": "a.txt", "name": "file", "content_type": "text/plain"}, io.BytesIO(b"hello"))
    store.create(new_record(job_id), dict(text), [upload])
    return job_id


def test_the_folder_is_private(store: DirectoryJobStore) -> None:
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    job_id = _create(store)
    assert stat.S_IMODE((store.root / job_id).stat().st_mode) == 0o700


def test_create_get_and_open_input(store: DirectoryJobStore) -> None:
    job_id = _create(store, name="alice")
    record = store.get(job_id)
    assert record is not None and record["status"] is JobStatus.QUEUED
    with store.open_input(job_id) as (text, files):
        assert text == {"name": "alice"}
        [(description, stream)] = files
        assert description["filename"] == "a.txt" and stream.read() == b"hello"
    assert stream.closed


def test_unknown_and_malformed_ids_are_none(store: DirectoryJobStore) -> None:
    assert store.get(new_job_id()) is None
    assert store.get("../../etc/passwd") is None
    assert not store.exists("../x")
    assert store.transition("nope", lambda record: {"attempt": 1}) is None
    assert not store.cancel_requested("nope")


def test_transition_applies_the_decision_atomically(store: DirectoryJobStore) -> None:
    job_id = _create(store)

    def bump() -> None:
        for _ in range(25):
            store.transition(job_id, lambda record: {"attempt": record["attempt"] + 1})

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    record = store.get(job_id)
    assert record is not None and record["attempt"] == 100
    assert store.transition(job_id, lambda record: None) == record  # no change, same record


def test_results_bytes_and_files(store: DirectoryJobStore, tmp_path: Path) -> None:
    job_id = _create(store)
    store.save_result(job_id, {"status_code": 200, "media_type": "application/json", "headers": []}, b"{}", None)
    loaded = store.load_result(job_id)
    assert loaded is not None and isinstance(loaded[1], Path) and loaded[1].read_bytes() == b"{}"
    source = tmp_path / "out.bin"
    source.write_bytes(b"\x00" * 10)
    meta = {"status_code": 201, "media_type": "image/png", "headers": {"content-disposition": "x"}}
    store.save_result(job_id, meta, None, str(source))  # type: ignore[arg-type]
    source.unlink()  # a copy was kept
    loaded = store.load_result(job_id)
    assert loaded is not None and loaded[0]["status_code"] == 201
    assert isinstance(loaded[1], Path) and loaded[1].read_bytes() == b"\x00" * 10


def test_cancel_marker(store: DirectoryJobStore) -> None:
    job_id = _create(store)
    assert not store.cancel_requested(job_id)
    store.request_cancel(job_id)
    assert store.cancel_requested(job_id)


def test_idempotency_keys(store: DirectoryJobStore) -> None:
    first, second = _create(store), _create(store)
    assert store.claim_key("k", first) == first
    assert store.claim_key("k", second) == first  # first come, first served
    store.release_key("k", second)  # not its key: nothing happens
    assert store.claim_key("k", second) == first
    store.delete(first)
    assert store.claim_key("k", second) == second  # the key of a gone job is free again
    store.release_key("k", second)
    assert store.claim_key("k", first) == first  # (first's folder is gone, but the claim is fresh)


def test_sweep_removes_jobs_finished_or_not_a_ttl_after_their_last_change(store: DirectoryJobStore) -> None:
    done, running, recent = _create(store), _create(store), _create(store)
    store.update(done, {"status": JobStatus.DONE, "finished": time.time()})
    store.update(running, {"status": JobStatus.RUNNING})  # e.g. its queue entry and runner are gone
    half_made = new_job_id()
    store.reserve(half_made)  # a crash between reserve and create: no record
    old = time.time() - 100
    os.utime(store.root / half_made, (old, old))
    store.claim_key("k-done", done)
    time.sleep(1.2)
    store.update(recent, {"progress": {"fraction": 0.5, "message": None}})  # a change keeps it
    assert store.sweep(ttl=1.0) == 3
    assert not store.exists(done) and not store.exists(running) and not store.exists(half_made)
    assert store.exists(recent)
    assert list((store.root / "keys").iterdir()) == []
    assert store.sweep(ttl=1.0) == 0


def test_every_change_renews_updated(store: DirectoryJobStore) -> None:
    job_id = _create(store)
    first = store.get(job_id)
    assert first is not None
    time.sleep(0.01)
    renewed = store.update(job_id, {})
    assert renewed is not None and renewed["updated"] > first["updated"]
    assert store.transition(job_id, lambda record: None) == renewed  # no change: not renewed
