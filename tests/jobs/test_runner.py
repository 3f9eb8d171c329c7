"""Running queued jobs (`izzati.jobs.runner`): the same callback, its result kept, failures and cancels."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from izzati import cancelled, progress
from izzati.invoker import Invoker
from izzati.jobs.model import JobStatus
from izzati.jobs.redisstore import RedisJobStore
from izzati.jobs.results import stored_result
from izzati.jobs.runner import JobRunner
from izzati.jobs.service import JobService
from izzati.queues import MemoryQueue
from tests.support.jobs import body_bytes


@pytest.fixture(params=["directory", "redis+s3"])
def jobs(request: pytest.FixtureRequest, tmp_path: Path) -> JobService:
    if request.param == "directory":
        return JobService.local(tmp_path / "jobs")
    store: RedisJobStore = request.getfixturevalue("redis_job_store")
    return JobService(store, MemoryQueue())


def _run(jobs: JobService, callback: Any, text: dict[str, Any] | None = None) -> str:
    job_id = jobs.submit(text or {}, [])["id"]
    jobs.queue.get(timeout=5)
    JobRunner(Invoker(callback), jobs).run_one(job_id)
    return job_id


def test_a_json_result_is_what_the_synchronous_call_answers(jobs: JobService) -> None:
    def callback(text: dict[str, Any], data: list[Any]) -> Any:
        progress(0.5, "half")
        return {"hello": text["name"]}

    job_id = _run(jobs, callback, {"name": "alice"})
    record = jobs.status(job_id)
    assert record["status"] is JobStatus.DONE and record["attempt"] == 1
    assert record["progress"] == {"fraction": 0.5, "message": "half"}
    meta, body = jobs.result(job_id)
    assert meta == {"status_code": 200, "media_type": "application/json", "headers": []}
    assert body_bytes(body) == b'{"hello":"alice"}'


def test_bytes_and_a_raising_callback(jobs: JobService) -> None:
    meta, body = jobs.result(_run(jobs, lambda text, data: b"\x01\x02"))
    assert meta["media_type"] == "application/octet-stream" and body_bytes(body) == b"\x01\x02"

    def broken(text: dict[str, Any], data: list[Any]) -> None:
        raise ValueError("secret detail")

    record = jobs.status(_run(jobs, broken))
    assert record["status"] is JobStatus.FAILED
    assert record["error"] == {
        "error": "callback_failed",
        "detail": "the callback raised ValueError",
        "status_code": 500,
    }

    record = jobs.status(_run(jobs, lambda text, data: {1, 2}))
    assert record["error"] is not None and record["error"]["error"] == "callback_failed"
    assert "cannot be sent as JSON" in record["error"]["detail"]


def test_a_job_started_too_often_fails_with_worker_lost(jobs: JobService) -> None:
    job_id = jobs.submit({}, [])["id"]
    jobs.store.update(job_id, {"attempt": 3})
    jobs.max_attempts = 3
    JobRunner(Invoker(lambda text, data: 1), jobs).run_one(job_id)
    record = jobs.status(job_id)
    assert record["status"] is JobStatus.FAILED and record["error"] is not None
    assert record["error"]["error"] == "worker_lost"


def test_a_cancelled_job_keeps_no_result(jobs: JobService) -> None:
    job_id = jobs.submit({}, [])["id"]
    seen: list[bool] = []

    def callback(text: dict[str, Any], data: list[Any]) -> str:
        jobs.store.request_cancel(job_id)
        time.sleep(0.25)  # cancelled() reads the store at most every 0.2 s
        seen.append(cancelled())
        return "late"

    JobRunner(Invoker(callback), jobs).run_one(job_id)
    assert seen == [True]
    assert jobs.status(job_id)["status"] is JobStatus.CANCELLED
    assert jobs.store.load_result(job_id) is None


def test_run_takes_jobs_until_stopped(jobs: JobService) -> None:
    runner = JobRunner(Invoker(lambda text, data: text), jobs)
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        ids = [jobs.submit({"n": str(n)}, [])["id"] for n in range(3)]
        deadline = time.monotonic() + 20
        while any(jobs.status(i)["status"] is not JobStatus.DONE for i in ids) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [jobs.status(i)["status"] for i in ids] == [JobStatus.DONE] * 3
    finally:
        runner.stop()
        thread.join(10)
    assert not thread.is_alive()


def test_stored_result_of_plain_values() -> None:
    assert stored_result([1, "a"]).body == b'[1,"a"]'
    assert stored_result(bytearray(b"x")).meta["media_type"] == "application/octet-stream"


@pytest.mark.parametrize("kind", ["stream", "astream", "headers"])
def test_a_job_result_is_the_synchronous_reply(jobs: JobService, client_for: Any, kind: str) -> None:
    from izzati import Backend
    from tests.callbacks import responses

    sync = client_for(Backend(responses.handle).app).post(
        "/", data={"kind": kind}
    )  # no jobs here: its server would run the queued job itself
    job_id = _run(jobs, responses.handle, {"kind": kind})
    assert jobs.status(job_id)["status"] is JobStatus.DONE
    stored = client_for(Backend(responses.handle, job_service=jobs).app).get(f"/jobs/{job_id}/result")
    assert stored.status_code == sync.status_code
    assert stored.content == sync.content and stored.content  # a stream is read to its end
    ignored = {"date", "server", "x-request-id", "content-length", "etag", "last-modified", "accept-ranges"}
    # the same headers (their order across names means nothing in HTTP; repeats are checked below)
    assert sorted((k, v) for k, v in stored.headers.multi_items() if k not in ignored) == sorted(
        (k, v) for k, v in sync.headers.multi_items() if k not in ignored and k != "transfer-encoding"
    )
    if kind == "headers":
        assert stored.headers.get_list("set-cookie") == sync.headers.get_list("set-cookie")
        assert len(stored.headers.get_list("set-cookie")) == 2
        assert stored.headers["location"] == "/things/7" and stored.headers["x-custom"] == "custom value"


def _wait_status(jobs: JobService, job_id: str, state: JobStatus, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while (record := jobs.status(job_id))["status"] is not state and time.monotonic() < deadline:
        time.sleep(0.02)
    return record


def test_a_raising_job_is_retried_with_backoff(tmp_path: Path) -> None:
    jobs = JobService.local(tmp_path / "jobs", retries=2)
    calls: list[float] = []

    def flaky(text: dict[str, Any], data: list[Any]) -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionError("the model server is warming up")
        return "third time"

    runner = jobs.runner(Invoker(flaky))
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        job_id = jobs.submit({}, [])["id"]
        waiting = _wait_status(jobs, job_id, JobStatus.QUEUED, 5)
        deadline = time.monotonic() + 5
        while (waiting := jobs.status(job_id))["retries"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert waiting["status"] is JobStatus.QUEUED and waiting["retry_at"] is not None
        assert waiting["error"]["detail"] == "the callback raised ConnectionError"  # the last error shows
        done = _wait_status(jobs, job_id, JobStatus.DONE)
        assert done["status"] is JobStatus.DONE and done["attempt"] == 3 and done["retries"] == 2
        assert calls[1] - calls[0] >= 0.9 and calls[2] - calls[1] >= 1.9  # 1 s, then 2 s
        assert body_bytes(jobs.result(job_id)[1]) == b'"third time"'
    finally:
        runner.stop()
        thread.join(10)


def test_retries_run_out(tmp_path: Path) -> None:
    jobs = JobService.local(tmp_path / "jobs", retries=1)

    def broken(text: dict[str, Any], data: list[Any]) -> None:
        raise ValueError("always")

    runner = jobs.runner(Invoker(broken))
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        job_id = jobs.submit({}, [])["id"]
        failed = _wait_status(jobs, job_id, JobStatus.FAILED)
        assert failed["status"] is JobStatus.FAILED and failed["attempt"] == 2 and failed["retries"] == 1
        assert failed["error"]["error"] == "callback_failed"
    finally:
        runner.stop()
        thread.join(10)


def test_an_error_answered_on_purpose_is_not_retried(jobs: JobService) -> None:
    from izzati.exceptions import BadRequest

    def refuses(text: dict[str, Any], data: list[Any]) -> None:
        raise BadRequest("no name given")

    jobs.retries = 3
    record = jobs.status(_run(jobs, refuses))
    assert record["status"] is JobStatus.FAILED and record["retries"] == 0


def test_finished_jobs_feed_the_measured_job_time(jobs: JobService) -> None:
    assert jobs.store.mean_duration() is None

    def quick(text: dict[str, Any], data: list[Any]) -> str:
        time.sleep(0.05)
        return "ok"

    started = time.monotonic()
    _run(jobs, quick)
    whole = time.monotonic() - started
    mean = jobs.store.mean_duration()
    assert mean is not None and 0.05 <= mean <= whole  # seconds: the callback's sleep, within the run
