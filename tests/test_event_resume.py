"""Reopening a job's event stream (`GET /jobs/<id>/events` with `Last-Event-ID`, what EventSource
does after every close): a finished job's stream ends at once, a cursor the server never gave is a
400 JSON error, for both stores (a folder, Redis + S3), through a real uvicorn server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from izzati import Backend
from izzati.invoker import Invoker
from izzati.jobs.objects import ObjectStore
from izzati.jobs.redisstore import RedisJobStore
from izzati.jobs.service import JobService
from izzati.queues import RedisQueue

Client = Callable[..., httpx.Client]


def echo(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
    return {"echo": text}


@pytest.fixture(params=["directory", "redis"])
def jobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobService]:
    """A job service on a folder, or on a real redis-server and SeaweedFS, with a runner thread."""
    if request.param == "directory":
        service = JobService.local(tmp_path / "jobs")
    else:
        url: str = request.getfixturevalue("redis_server")
        objects: ObjectStore = request.getfixturevalue("object_store")
        service = JobService(RedisJobStore(url, objects, name="ev"), RedisQueue(url, name="ev:jobs"))
    runner = service.runner(Invoker(echo))
    thread = threading.Thread(target=runner.run)
    thread.start()
    yield service
    runner.stop()
    thread.join(10)


def _sse(text: str) -> list[tuple[str, str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        events.append((fields["id"], fields["event"], json.loads(fields["data"])))
    return events


def _finished_job(client: httpx.Client) -> tuple[str, list[tuple[str, str, Any]]]:
    job = client.post("/jobs", data={"n": "1"}).json()["id"]
    events = _sse(client.get(f"/jobs/{job}/events", timeout=30).text)
    assert [kind for _, kind, _ in events] == ["queued", "running", "result", "done"]
    return job, events


def test_a_finished_jobs_stream_reopened_at_its_end_ends_at_once(client_for: Client, jobs: JobService) -> None:
    client = client_for(Backend(echo, job_service=jobs).app)
    job, events = _finished_job(client)
    for cursor in (events[-1][0], events[-2][0]):
        reply = client.get(f"/jobs/{job}/events", headers={"Last-Event-ID": cursor}, timeout=5)
        if cursor == events[-1][0]:  # at its final event: nothing more will come; 204 stops EventSource
            assert reply.status_code == 204 and reply.content == b""
        else:  # before it: the rest, and the stream ends after the final event
            assert reply.status_code == 200 and _sse(reply.text) == events[-1:]


@pytest.mark.parametrize(
    "cursor",
    ["1", "-1", "abc", "1.5", "99999", "9" * 40, "9" * 5000, "3", "+3", "1_0", "0x10"],
    ids=lambda cursor: repr(cursor if len(cursor) < 12 else f"{cursor[:4]}..({len(cursor)})"),
)
def test_a_cursor_the_server_never_gave_is_a_400(client_for: Client, jobs: JobService, cursor: str) -> None:
    client = client_for(Backend(echo, job_service=jobs).app)
    job, events = _finished_job(client)
    given = {c for c, _, _ in events} | {"0"}
    if cursor.strip() in given:  # "1" is a boundary in Redis (one event read), not in a folder (bytes)
        pytest.skip(f"{cursor!r} is an event boundary of this store")
    reply = client.get(f"/jobs/{job}/events", headers={"Last-Event-ID": cursor}, timeout=5)
    assert reply.status_code == 400, reply.text
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["error"] == "bad_request" and "Last-Event-ID" in body["detail"], body
    assert "Traceback" not in reply.text


def test_the_folder_log_finds_the_event_before_a_cursor_across_long_lines(tmp_path: Path) -> None:
    from izzati.jobs.events import BadCursor, EventLog

    log = EventLog(lambda job_id: tmp_path / f"{job_id}.jsonl")
    log.append("j", "item", "x" * 200_000)  # longer than the blocks it is read back in
    log.append("j", "done", {"status": "done"})
    (item, _, _), (final, _, _) = log.read("j")
    assert not log.ended_at("j", item) and log.ended_at("j", final) and not log.ended_at("j", 0)
    assert log.read("j", final) == []
    for cursor in (item - 1, item + 1, final + 1, -1):
        with pytest.raises(BadCursor):
            log.read("j", cursor)
