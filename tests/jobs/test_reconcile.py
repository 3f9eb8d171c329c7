"""Jobs whose queue entry is gone are queued again (`izzati.jobs.runner.reconcile`), on a real Redis."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis

from izzati.jobs.dirstore import DirectoryJobStore
from izzati.jobs.model import JobStatus
from izzati.jobs.reconcile import reconcile
from izzati.jobs.service import JobService
from izzati.queues import RedisQueue

pytestmark = pytest.mark.redis


def _entries(url: str) -> list[Any]:
    return RedisQueue(url, name="rc:jobs").items()


def test_lost_entries_are_queued_again_once(redis_server: str, tmp_path: Path) -> None:
    store = DirectoryJobStore(tmp_path / "jobs")
    jobs = JobService(store, RedisQueue(redis_server, name="rc:jobs"))
    queued, running, fresh, done = (jobs.submit({"n": str(n)}, [])["id"] for n in range(4))
    store.update(running, {"status": JobStatus.RUNNING, "attempt": 1})
    store.update(done, {"status": JobStatus.DONE, "finished": time.time()})
    redis.Redis.from_url(redis_server).flushall()  # Redis restarted without persistence
    time.sleep(0.3)
    store.update(fresh, {})  # changed just now: maybe being submitted, left alone this round
    requeued = reconcile(store, jobs.queue, queued_after=0.2, running_after=0.2)
    assert sorted(requeued) == sorted([queued, running])
    assert sorted(item["id"] for item in _entries(redis_server)) == sorted([queued, running])
    # a second runner sweeping right after finds them present: nothing is queued twice
    assert reconcile(store, jobs.queue, queued_after=0.2, running_after=0.2) == []
    time.sleep(0.3)
    assert reconcile(store, jobs.queue, queued_after=0.2, running_after=0.2) == [fresh]


def test_a_running_job_whose_runner_renews_it_is_left_alone(redis_server: str, tmp_path: Path) -> None:
    store = DirectoryJobStore(tmp_path / "jobs")
    jobs = JobService(store, RedisQueue(redis_server, name="rc:jobs"))
    job_id = jobs.submit({}, [])["id"]
    store.update(job_id, {"status": JobStatus.RUNNING, "attempt": 1})
    redis.Redis.from_url(redis_server).flushall()
    time.sleep(0.3)
    assert reconcile(store, jobs.queue, queued_after=0.2, running_after=5) == []  # renewed 0.3 s ago


def test_memory_queues_are_not_listed(tmp_path: Path) -> None:
    jobs = JobService.local(tmp_path / "jobs")
    jobs.submit({}, [])
    assert reconcile(jobs.store, jobs.queue, queued_after=0, running_after=0) == []


def test_queued_jobs_know_their_place_and_a_full_queue_says_when_to_come_back(
    redis_server: str, tmp_path: Path
) -> None:
    from izzati.exceptions import Overloaded

    store = DirectoryJobStore(tmp_path / "jobs")
    jobs = JobService(store, RedisQueue(redis_server, name="pq:jobs"), max_queued=3)
    ids = [jobs.submit({"n": str(n)}, [])["id"] for n in range(3)]
    assert [jobs.position(job_id) for job_id in ids] == [(0, None), (1, None), (2, None)]  # no job timed yet
    with pytest.raises(Overloaded) as caught:
        jobs.submit({}, [])
    assert caught.value.retry_after == 1 and "IZZATI_MAX_QUEUED_JOBS=3" in caught.value.detail
    for seconds in (4.0, 4.0):
        store.add_duration(seconds)
    assert store.mean_duration() == 4.0
    assert [jobs.position(job_id) for job_id in ids] == [(0, 4.0), (1, 8.0), (2, 12.0)]  # one runner
    with pytest.raises(Overloaded) as caught:
        jobs.submit({}, [])
    assert caught.value.retry_after == 4  # the first job ahead ends in about one mean job time


def test_a_full_jobs_queue_is_a_json_503_and_the_status_shows_the_place(
    redis_server: str, tmp_path: Path, client_for: Any
) -> None:
    from izzati import Backend

    jobs = JobService(DirectoryJobStore(tmp_path / "jobs"), RedisQueue(redis_server, name="pq2:jobs"), max_queued=1)
    client = client_for(Backend(lambda text, data: text, job_service=jobs).app)
    first = client.post("/jobs", data={"a": "1"})
    assert first.status_code == 202
    status = client.get(first.headers["location"]).json()
    assert status["status"] == "queued" and status["position"] == 0 and status["eta"] is None
    full = client.post("/jobs", data={"a": "2"})
    assert full.status_code == 503 and full.headers["retry-after"] == "1"
    assert full.json()["error"] == "overloaded"
