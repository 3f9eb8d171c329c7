"""Submitting, reading, cancelling jobs and their results (`izzati.jobs.service`)."""

from __future__ import annotations

import io
import queue
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from izzati.exceptions import BadRequest, HTTPError
from izzati.files import UploadedFile
from izzati.jobs.dirstore import DirectoryJobStore
from izzati.jobs.model import JobStatus, failure
from izzati.jobs.service import JobService
from izzati.queues import MemoryQueue


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "jobs"


@pytest.fixture
def jobs(root: Path) -> JobService:
    return JobService.local(root)


def test_submit_stores_the_request_and_queues_its_id(jobs: JobService) -> None:
    upload = UploadedFile(io.BytesIO(b"data"), "in.bin", name="file", content_type="application/x-thing")
    record = jobs.submit({"name": "alice"}, [upload])
    assert record["status"] is JobStatus.QUEUED
    assert jobs.queue.get(timeout=5) == {"id": record["id"]}
    with jobs.store.open_input(record["id"]) as (text, files):
        assert text == {"name": "alice"}
        description = {"filename": "in.bin", "name": "file", "content_type": "application/x-thing", "path": "in-0"}
        assert files[0][0] == description
        assert files[0][1].read() == b"data"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "127.0.0.1:80", ["http://127.0.0.1/"]])
def test_a_callback_url_must_be_http(jobs: JobService, root: Path, url: Any) -> None:
    with pytest.raises(BadRequest, match="callback_url must be one http"):
        jobs.submit({}, [], callback_url=url)
    assert [p for p in root.iterdir() if p.name != "keys"] == []  # nothing stored


def test_idempotency_key_gives_the_same_job(jobs: JobService) -> None:
    first = jobs.submit({"n": "1"}, [], idempotency_key="order-7")
    again = jobs.submit({"n": "2"}, [], idempotency_key="order-7")
    assert again["id"] == first["id"]
    assert jobs.queue.get(timeout=5) == {"id": first["id"]}
    with pytest.raises(queue.Empty):
        jobs.queue.get(timeout=0.2)  # queued once


def test_a_failed_submit_leaves_nothing(root: Path) -> None:
    class Refusing(MemoryQueue):
        def put(self, obj: Any, block: bool = True, timeout: float | None = None) -> None:
            raise queue.Full

    jobs = JobService(DirectoryJobStore(root), Refusing())
    with pytest.raises(queue.Full):
        jobs.submit({}, [], idempotency_key="k")
    assert sorted(p.name for p in root.iterdir()) == ["keys"]
    assert list((root / "keys").iterdir()) == []


def test_status_and_result_errors(jobs: JobService) -> None:
    with pytest.raises(HTTPError) as caught:
        jobs.status("0" * 32)
    assert (caught.value.status_code, caught.value.code) == (404, "not_found")
    job_id = jobs.submit({}, [])["id"]
    with pytest.raises(HTTPError) as caught:
        jobs.result(job_id)
    assert (caught.value.status_code, caught.value.code) == (409, "not_done")
    jobs.store.update(job_id, {"status": JobStatus.FAILED, "error": failure("bad_request", "no name", 400)})
    with pytest.raises(HTTPError) as caught:
        jobs.result(job_id)
    assert (caught.value.status_code, caught.value.code, caught.value.detail) == (400, "bad_request", "no name")


def test_cancel_a_queued_job_ends_it_and_tells_its_callback_url(jobs: JobService) -> None:
    received: list[bytes] = []
    arrived = threading.Event()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()
            arrived.set()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        job_id = jobs.submit({}, [], callback_url=url)["id"]
        record = jobs.cancel(job_id)
        assert record["status"] is JobStatus.CANCELLED and record["finished"] is not None
        assert arrived.wait(10)
        assert b'"status": "cancelled"' in received[0]
        assert jobs.cancel(job_id)["status"] is JobStatus.CANCELLED  # again: no change, no second post
        with pytest.raises(HTTPError) as caught:
            jobs.result(job_id)
        assert caught.value.code == "cancelled"
    finally:
        server.shutdown()
    assert len(received) == 1


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[", "not a valid URL"),
        ("http://127.0.0.1:99999/", "not a valid URL"),
        ("http://127.0.0.1:0/", "port"),
        ("http:/nohost", "no host"),
        ("https://", "no host"),
        ("http://user:secret@127.0.0.1/hook", "user name or password"),
        ("http://user@127.0.0.1/hook", "user name or password"),
    ],
)
def test_a_callback_url_needs_a_host_a_valid_port_and_no_credentials(jobs: JobService, url: str, reason: str) -> None:
    with pytest.raises(BadRequest) as caught:
        jobs.submit({}, [], callback_url=url)
    assert reason in caught.value.detail
    assert "secret" not in caught.value.detail


def test_valid_callback_urls(jobs: JobService) -> None:
    for url in ("http://127.0.0.1:8080/hook?x=1", "https://hooks.internal/a", "http://[::1]:9/x"):
        assert jobs.submit({}, [], callback_url=url)["callback_url"] == url
