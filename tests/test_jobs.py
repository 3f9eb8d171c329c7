"""Jobs end to end: real web and worker processes, a real Redis, a shared job folder."""

from __future__ import annotations

import http.server
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from izzati import Frontend
from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc

Spawn = Callable[..., Proc]


class Service:
    """A web process and any number of worker processes sharing Redis and a job folder."""

    def __init__(self, spawn: Spawn, redis_url: str, job_dir: Path, **extra: str) -> None:
        self.spawn = spawn
        self.env = {
            "IZZATI_QUEUE_URL": redis_url,
            "IZZATI_CALLBACK": "jobwork:handle",
            "IZZATI_JOB_DIR": str(job_dir),
            "IZZATI_REDELIVERY_TIMEOUT": "2",
            "IZZATI_HOST": "127.0.0.1",
            **extra,
        }
        self.job_dir = job_dir
        self.web: Proc | None = None
        self.url = ""

    def start_web(self) -> str:
        port = free_tcp_port()
        self.web = self.spawn([PYTHON, "-m", "app"], env={**self.env, "IZZATI_PORT": str(port)})
        self.url = f"http://127.0.0.1:{port}"
        wait_for_http(self.url + "/health", proc=self.web.popen)
        return self.url

    def start_worker(self) -> Proc:
        worker = self.spawn([PYTHON, "-m", "app", "worker"], env=self.env)
        worker.wait_output(lambda out: "started on" in out)
        return worker

    def submit(self, **fields: str) -> str:
        r = httpx.post(self.url + "/", data=fields, headers={"prefer": "respond-async"})
        assert r.status_code == 202, r.text
        job_id: str = r.json()["id"]
        return job_id

    def status(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.url}/jobs/{job_id}").json()
        return result

    def wait(self, job_id: str, states: tuple[str, ...], timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(job_id)
            if status["status"] in states:
                return status
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} not in {states} after {timeout} s: {self.status(job_id)}")


@pytest.fixture
def service(redis_server: str, spawn: Spawn, tmp_path: Path) -> Service:
    return Service(spawn, redis_server, tmp_path / "jobs")


def test_submit_poll_result_json_and_files(service: Service) -> None:
    service.start_web()
    service.start_worker()
    r = httpx.post(service.url + "/jobs", data={"name": "ada"}, files={"file": ("in.txt", b"input bytes")})
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "queued" and body["url"] == f"/jobs/{body['id']}"
    assert r.headers["location"] == body["url"]
    status = service.wait(body["id"], ("done",))
    assert status["attempt"] == 1 and status["error"] is None
    assert status["created"] <= status["started"] <= status["finished"]
    result = httpx.get(f"{service.url}/jobs/{body['id']}/result")
    assert result.headers["content-type"] == "application/json"
    assert result.json() == {"text": {"name": "ada"}, "files": [["in.txt", "input bytes"]]}
    # the same as the synchronous call
    sync = httpx.post(service.url + "/", data={"name": "ada"}, files={"file": ("in.txt", b"input bytes")})
    assert sync.json() == result.json()

    file_job = service.submit(mode="file")
    service.wait(file_job, ("done",))
    r = httpx.get(f"{service.url}/jobs/{file_job}/result")
    assert r.content == b"job file body"
    assert r.headers["content-disposition"] == 'attachment; filename="report.txt"'
    assert r.headers["content-type"].startswith("text/plain")


def test_failed_job_result_is_the_sync_error(service: Service) -> None:
    service.start_web()
    service.start_worker()
    job = service.submit(mode="fail")
    status = service.wait(job, ("failed",))
    assert status["error"] == {"error": "callback_failed", "detail": "the callback raised ValueError"}
    r = httpx.get(f"{service.url}/jobs/{job}/result")
    assert r.status_code == 500 and r.json()["error"] == "callback_failed"


def test_progress_is_seen_midway_and_result_is_409_until_done(service: Service, tmp_path: Path) -> None:
    service.start_web()
    service.start_worker()
    gate = tmp_path / "gate"
    job = service.submit(mode="progress", gate=str(gate))
    status = service.wait(job, ("running",))
    deadline = time.monotonic() + 10
    while status["progress"] is None and time.monotonic() < deadline:
        status = service.status(job)
    assert status["progress"] == {"fraction": 0.25, "message": "a quarter"}
    r = httpx.get(f"{service.url}/jobs/{job}/result")
    assert r.status_code == 409 and r.json()["error"] == "not_done"
    gate.touch()
    done = service.wait(job, ("done",))
    assert done["progress"] == {"fraction": 1.0, "message": "finishing"}


def test_cancel_queued_and_running(service: Service, tmp_path: Path) -> None:
    service.start_web()
    queued = service.submit(started=str(tmp_path / "queued-started"))
    r = httpx.delete(f"{service.url}/jobs/{queued}")
    assert r.status_code == 202 and r.json()["status"] == "cancelled"
    service.start_worker()
    running = service.submit(mode="hold", saw_cancel=str(tmp_path / "saw"), started=str(tmp_path / "running-started"))
    service.wait(running, ("running",))
    cancelled_at = time.monotonic()
    assert httpx.delete(f"{service.url}/jobs/{running}").json()["status"] == "cancelled"
    deadline = time.monotonic() + 10
    while not (tmp_path / "saw").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "saw").read_text() == "yes"
    assert time.monotonic() - cancelled_at < 5
    assert service.status(running)["status"] == "cancelled"
    assert httpx.get(f"{service.url}/jobs/{running}/result").status_code == 409
    # the queued one never ran, even now that a worker is there
    assert not (tmp_path / "queued-started").exists()
    assert service.status(queued)["status"] == "cancelled"


def test_unknown_ids_are_404_json(service: Service) -> None:
    service.start_web()
    for method, path in [
        ("GET", "/jobs/0123"),
        ("GET", "/jobs/" + "a" * 32),
        ("GET", "/jobs/../etc/result"),
        ("DELETE", "/jobs/" + "b" * 32),
        ("GET", "/jobs/" + "c" * 32 + "/result"),
    ]:
        r = httpx.request(method, service.url + path)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/json"
        assert r.json()["error"] == "not_found"


def test_idempotency_key_returns_the_same_job(service: Service) -> None:
    service.start_web()
    first = httpx.post(service.url + "/jobs", data={"n": "1"}, headers={"idempotency-key": "order-17"}).json()
    again = httpx.post(service.url + "/jobs", data={"n": "2"}, headers={"idempotency-key": "order-17"}).json()
    other = httpx.post(service.url + "/jobs", data={"n": "3"}, headers={"idempotency-key": "order-18"}).json()
    assert first["id"] == again["id"] != other["id"]


def test_killed_worker_job_completes_on_attempt_2(service: Service, tmp_path: Path) -> None:
    service.start_web()
    first = service.start_worker()
    job = service.submit(mode="hold", seconds="60", saw_cancel=str(tmp_path / "x"), started=str(tmp_path / "s1"))
    service.wait(job, ("running",))
    first.kill_group()
    (tmp_path / "s1").unlink()
    service.start_worker()
    service.wait(job, ("running",))
    deadline = time.monotonic() + 15
    while service.status(job)["attempt"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.status(job)["attempt"] == 2
    assert (tmp_path / "s1").exists()  # the callback really started again
    # the second worker still holds the 60 s job: cancel it, so that the worker stops at once at
    # teardown instead of using its graceful timeout (30 s) until Proc.stop kills it after 10 s
    httpx.delete(f"{service.url}/jobs/{job}")


def test_worker_lost_after_max_attempts(redis_server: str, spawn: Spawn, tmp_path: Path) -> None:
    service = Service(spawn, redis_server, tmp_path / "jobs", IZZATI_JOB_MAX_ATTEMPTS="1")
    service.start_web()
    worker = service.start_worker()
    job = service.submit(mode="hold", seconds="60", saw_cancel=str(tmp_path / "x"))
    service.wait(job, ("running",))
    worker.kill_group()
    service.start_worker()
    status = service.wait(job, ("failed",))
    assert status["error"]["error"] == "worker_lost"
    assert status["attempt"] == 1


def test_jobs_survive_a_web_restart(service: Service) -> None:
    service.start_web()
    jobs = [service.submit(name=f"r{i}") for i in range(5)]
    assert service.web is not None
    service.web.signal(signal.SIGTERM)
    service.web.popen.wait(15)
    service.start_web()
    service.start_worker()
    for i, job in enumerate(jobs):
        service.wait(job, ("done",))
        assert httpx.get(f"{service.url}/jobs/{job}/result").json()["text"] == {"name": f"r{i}"}


def test_ttl_expiry_deletes_files(redis_server: str, spawn: Spawn, tmp_path: Path) -> None:
    service = Service(spawn, redis_server, tmp_path / "jobs", IZZATI_JOB_TTL="1")
    service.start_web()
    service.start_worker()
    r = httpx.post(service.url + "/jobs", data={"a": "b"}, files={"file": ("f.bin", b"x" * 1000)})
    job = r.json()["id"]
    service.wait(job, ("done",))
    assert (service.job_dir / job / "result").exists()
    deadline = time.monotonic() + 15
    while (service.job_dir / job).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (service.job_dir / job).exists()
    assert httpx.get(f"{service.url}/jobs/{job}").status_code == 404


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    failures_left = 1

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if _Receiver.failures_left > 0:  # the first delivery fails: izzati must retry
            _Receiver.failures_left -= 1
            self.send_response(503)
        else:
            _Receiver.received.append(body)
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.received = []
    _Receiver.failures_left = 1
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_callback_url_receives_final_status(service: Service, receiver: str) -> None:
    service.start_web()
    service.start_worker()
    r = httpx.post(service.url + "/jobs", data={"a": "1", "callback_url": receiver})
    job = r.json()["id"]
    service.wait(job, ("done",))
    deadline = time.monotonic() + 15
    while not _Receiver.received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(x["id"], x["status"]) for x in _Receiver.received] == [(job, "done")]
    # callback_url is izzati's field, not the callback's
    assert httpx.get(f"{service.url}/jobs/{job}/result").json()["text"] == {"a": "1"}
    bad = httpx.post(service.url + "/jobs", data={"callback_url": "file:///etc/passwd"})
    assert bad.status_code == 400


def test_frontend_job_handle(service: Service) -> None:
    service.start_web()
    service.start_worker()
    client = Frontend(service.url + "/")
    job = client.submit(js={"who": "frontend"}, files=[("a.txt", b"A")])
    assert job.wait(timeout=30)["status"] == "done"
    assert job.result() == {"text": {"who": "frontend"}, "files": [["a.txt", "A"]]}
    held = client.submit(js={"mode": "hold", "saw_cancel": os.devnull})
    assert held.cancel()["status"] == "cancelled"


def test_memory_queue_service_runs_jobs_locally(spawn: Spawn, tmp_path: Path) -> None:
    port = free_tcp_port()
    web = spawn(
        [PYTHON, "-m", "app"],
        env={
            "IZZATI_PORT": str(port),
            "IZZATI_HOST": "127.0.0.1",
            "IZZATI_CALLBACK": "jobwork:handle",
            "IZZATI_JOB_DIR": str(tmp_path / "jobs"),
        },
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/health", proc=web.popen)
    job = Frontend(url).submit(js={"local": "yes"})
    assert job.wait(timeout=30)["status"] == "done"
    assert job.result()["text"] == {"local": "yes"}


def test_concurrent_submits_with_one_idempotency_key_make_one_job(service: Service) -> None:
    service.start_web()
    big = os.urandom(8 * 1024 * 1024)  # storing it takes long enough for the submits to overlap

    def submit(i: int) -> str:
        r = httpx.post(
            service.url + "/jobs",
            data={"n": str(i)},
            files={"file": ("big.bin", big)},
            headers={"idempotency-key": "race-1"},
            timeout=60,
        )
        assert r.status_code == 202, r.text
        job_id: str = r.json()["id"]
        return job_id

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(submit, range(8)))
    assert len(ids) == 1
    assert len([p for p in service.job_dir.iterdir() if p.name != "keys"]) == 1


def test_cancelling_a_queued_job_notifies_its_callback_url(service: Service, receiver: str) -> None:
    service.start_web()  # no worker: the job stays queued
    r = httpx.post(service.url + "/jobs", data={"a": "1"}, headers={"callback-url": receiver})
    job = r.json()["id"]
    assert httpx.delete(f"{service.url}/jobs/{job}").json()["status"] == "cancelled"
    deadline = time.monotonic() + 15
    while not _Receiver.received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(x["id"], x["status"]) for x in _Receiver.received] == [(job, "cancelled")]


def test_an_expired_idempotency_key_is_free_again(redis_server: str, spawn: Spawn, tmp_path: Path) -> None:
    service = Service(spawn, redis_server, tmp_path / "jobs", IZZATI_JOB_TTL="1")
    service.start_web()
    service.start_worker()
    first = httpx.post(service.url + "/jobs", data={"n": "1"}, headers={"idempotency-key": "k-ttl"}).json()["id"]
    service.wait(first, ("done",))
    deadline = time.monotonic() + 15
    while (service.job_dir / first).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    started = time.monotonic()
    again = httpx.post(service.url + "/jobs", data={"n": "2"}, headers={"idempotency-key": "k-ttl"}, timeout=60)
    assert again.status_code == 202
    assert again.json()["id"] != first
    assert time.monotonic() - started < 5


def test_malformed_entries_on_the_jobs_stream_are_parked_and_jobs_go_on(service: Service, redis_server: str) -> None:
    import redis

    service.start_web()
    worker = service.start_worker()
    raw = redis.Redis.from_url(redis_server)
    raw.xadd("izzati:jobs:stream", {"d": b"{not json"})
    raw.xadd("izzati:jobs:stream", {"d": b'{"not": "a job"}'})
    raw.xadd("izzati:jobs:stream", {"d": b'{"id": "../../etc"}'})
    job = service.submit(name="after")
    assert service.wait(job, ("done",))["status"] == "done"
    assert raw.xlen("izzati:jobs:dead") == 3
    ready = httpx.get(service.url + "/ready").json()
    assert ready["status"] == "ready" and ready["dead_letters"] == {"izzati": 0, "izzati:jobs": 3}
    assert worker.popen.poll() is None and "Traceback" not in worker.output()


def test_a_worker_whose_job_thread_dies_exits_non_zero_naming_it(service: Service, redis_server: str) -> None:
    import redis

    service.start_web()
    worker = service.start_worker()
    raw = redis.Redis.from_url(redis_server)
    raw.delete("izzati:jobs:stream")
    raw.set("izzati:jobs:stream", "not a stream")  # every read of the jobs queue fails now
    assert worker.popen.wait(30) not in (0, None)
    output = worker.output()
    assert "the izzati-jobs thread died" in output
    assert "exiting so that its supervisor restarts it" in output


def test_jobs_lost_with_redis_data_are_queued_again(redis_server: str, spawn: Spawn, tmp_path: Path) -> None:
    import redis

    service = Service(spawn, redis_server, tmp_path / "jobs", IZZATI_JOB_TTL="20")  # sweeps every 2 s
    service.start_web()
    ids = [service.submit(name=f"lost {n}") for n in range(3)]
    redis.Redis.from_url(redis_server).flushall()  # Redis restarted without persistence: entries gone
    service.start_worker()
    for job_id in ids:
        assert service.wait(job_id, ("done",), timeout=30)["status"] == "done"


def test_prefer_wait_answers_fast_jobs_inline_and_slow_ones_with_202(service: Service) -> None:
    service.start_web()
    service.start_worker()
    fast = httpx.post(service.url + "/", data={"name": "quick"}, headers={"Prefer": "respond-async, wait=10"})
    sync = httpx.post(service.url + "/", data={"name": "quick"})
    assert fast.status_code == 200 and fast.headers["preference-applied"] == "wait=10"
    assert fast.json() == sync.json()
    slow = httpx.post(
        service.url + "/",
        data={"mode": "hold", "seconds": "2", "saw_cancel": "/dev/null"},
        headers={"Prefer": "respond-async, wait=0.3"},
    )
    assert slow.status_code == 202 and slow.headers["preference-applied"] == "respond-async"
    assert slow.json()["status"] in ("queued", "running")
    failed = httpx.post(service.url + "/", data={"mode": "fail"}, headers={"Prefer": "respond-async, wait=10"})
    assert failed.status_code == 500 and failed.json()["error"] == "callback_failed"
    # the Python client follows a 202 to the result; either way it returns what send() returns
    frontend = Frontend(service.url + "/")
    assert frontend.send({"name": "f"}, wait=10) == frontend.send({"name": "f"})
    held = frontend.send({"mode": "hold", "seconds": "1", "saw_cancel": "/dev/null"}, wait=0.2)  # 202, followed
    assert held == {"text": {"mode": "hold", "seconds": "1", "saw_cancel": "/dev/null"}, "files": []}
