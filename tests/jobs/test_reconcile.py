"""Jobs whose queue entry is gone are queued again (`izzati.jobs.runner.reconcile`), on a real Redis."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis

from izzati.jobs.model import JobStatus
from izzati.jobs.runner import reconcile
from izzati.jobs.service import JobService
from izzati.jobs.store import DirectoryJobStore
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
