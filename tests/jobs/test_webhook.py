"""Webhook deliveries (`izzati.jobs.webhook`) through a real server and real callback targets."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from izzati import Backend
from izzati.invoker import Invoker
from izzati.jobs.service import JobService


class BlackHole:
    """A callback target that takes connections and never answers; it counts those held open."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.open = 0
        self.most_open = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, name="test-target", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.open += 1
                self.most_open = max(self.most_open, self.open)
            threading.Thread(target=self._hold, args=(conn,), name="test-target", daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            while conn.recv(65536):  # until the client gives up and closes
                pass
        with self.lock:
            self.open -= 1

    def close(self) -> None:
        self.sock.close()


class Target:
    """A callback target that answers every POST with `status` and keeps the paths it got."""

    def __init__(self, status: int) -> None:
        self.paths: list[str] = []
        target = self

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                target.paths.append(self.path)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="test-target", daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


@pytest.fixture
def jobs_client(client_for: Callable[..., httpx.Client], tmp_path: Path) -> Iterator[httpx.Client]:
    """A real server of jobs, with their runner on a thread of this process (where it posts)."""
    jobs = JobService.local(tmp_path / "jobs")
    runner = jobs.runner(Invoker(_echo))
    thread = threading.Thread(target=runner.run, name="test-job-runner", daemon=True)
    thread.start()
    yield client_for(Backend(_echo, job_service=jobs).app)
    runner.stop()
    thread.join(10)


def _echo(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
    return text


def _submit(client: httpx.Client, url: str) -> str:
    r = client.post("/jobs", data={"a": "1"}, headers={"Callback-URL": url})
    assert r.status_code == 202, r.text
    job_id: str = r.json()["id"]
    return job_id


def _wait(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_target_that_never_answers_holds_a_few_connections_and_others_still_get_theirs(
    jobs_client: httpx.Client, black_hole: BlackHole
) -> None:
    # 40 jobs for a target that hangs, then 5 for one that answers: the hanging host holds at
    # most its share of the pool (2 POSTs), never a thread and a socket per job, and the other
    # host's deliveries go through meanwhile
    before = set(threading.enumerate())
    jobs = [_submit(jobs_client, black_hole.url) for _ in range(40)]
    _wait(lambda: all(jobs_client.get(f"/jobs/{job}").json()["status"] == "done" for job in jobs))
    good = Target(204)
    try:
        for _ in range(5):
            _submit(jobs_client, good.url + "/hook")
        _wait(lambda: len(good.paths) == 5)
        with black_hole.lock:
            assert 1 <= black_hole.most_open <= 2, black_hole.most_open
        ours = ("test-", "AnyIO", "process_request_thread")  # the targets' and the server's threads
        started = [t.name for t in set(threading.enumerate()) - before if not any(o in t.name for o in ours)]
        assert len(started) <= 8, started  # the pool's threads, however many jobs ended
    finally:
        good.close()


def test_a_failed_delivery_logs_no_secret_of_the_query(
    jobs_client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    failing = Target(500)
    try:
        with caplog.at_level(logging.WARNING, logger="izzati.jobs"):
            _submit(jobs_client, failing.url + "/hook?token=s3cret&user=ann#frag")
            _wait(lambda: "attempt 1 failed" in caplog.text)
        assert failing.paths[0] == "/hook?token=s3cret&user=ann"  # the target gets the URL as given
        assert "s3cret" not in caplog.text and "ann" not in caplog.text
        assert "/hook?token=***&user=***" in caplog.text
    finally:
        failing.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://a b/",
        "http://host/pa th",
        "http://host/x\r\nX-Injected: 1",
        "http://ho\tst/",
        "http://a<b>/",
        "http://a..b/",
    ],
)
def test_a_callback_url_that_cannot_be_sent_is_refused_at_submission(jobs_client: httpx.Client, url: str) -> None:
    r = jobs_client.post("/jobs", data={"a": "1", "callback_url": url})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"] == "bad_request" and "callback_url" in r.json()["detail"]
