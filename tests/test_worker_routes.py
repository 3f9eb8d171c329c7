"""`python -m app worker` with IZZATI_WORKER_ROUTES runs the jobs of those routes only; a job of
another route of the service stays queued (not failed) until a worker that runs it comes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc

Spawn = Callable[..., Proc]
ROUTES = "/a=jobwork:handle,/b=jobwork:handle"


def _submit(url: str, path: str, started: Path) -> str:
    r = httpx.post(url + path, data={"started": str(started)}, headers={"Prefer": "respond-async"})
    assert r.status_code == 202, r.text
    job_id: str = r.json()["id"]
    return job_id


def _wait(url: str, job_id: str, state: str, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, object] = httpx.get(f"{url}/jobs/{job_id}").json()
        if status["status"] == state or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def test_a_worker_runs_its_routes_and_leaves_the_others_queued(redis_server: str, spawn: Spawn, tmp_path: Path) -> None:
    env = {
        "IZZATI_QUEUE_URL": redis_server,
        "IZZATI_ROUTES": ROUTES,
        "IZZATI_JOB_DIR": str(tmp_path / "jobs"),
        "IZZATI_HOST": "127.0.0.1",
    }
    port = free_tcp_port()
    web = spawn([PYTHON, "-m", "app"], env={**env, "IZZATI_PORT": str(port)})
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/health", proc=web.popen)
    only_a = spawn([PYTHON, "-m", "app", "worker"], env={**env, "IZZATI_WORKER_ROUTES": "/a"})
    only_a.wait_output(lambda out: "started on" in out)
    b_job = _submit(url, "/b", tmp_path / "b-started")
    a_job = _submit(url, "/a", tmp_path / "a-started")
    assert _wait(url, a_job, "done")["status"] == "done"  # taken after the /b job, given back
    assert (tmp_path / "a-started").read_text() == str(only_a.popen.pid)
    time.sleep(2)  # the /b job went round the queue several times meanwhile
    status = _wait(url, b_job, "queued", timeout=0)
    assert status["status"] == "queued" and status["attempt"] == 0, status
    assert not (tmp_path / "b-started").exists()
    only_b = spawn([PYTHON, "-m", "app", "worker"], env={**env, "IZZATI_WORKER_ROUTES": "/b"})
    assert _wait(url, b_job, "done")["status"] == "done"
    assert (tmp_path / "b-started").read_text() == str(only_b.popen.pid)


def test_a_route_the_service_does_not_have_is_refused_at_start(redis_server: str, spawn: Spawn, tmp_path: Path) -> None:
    env = {
        "IZZATI_QUEUE_URL": redis_server,
        "IZZATI_ROUTES": ROUTES,
        "IZZATI_JOB_DIR": str(tmp_path / "jobs"),
        "IZZATI_WORKER_ROUTES": "/a,/c",
    }
    worker = spawn([PYTHON, "-m", "app", "worker"], env=env)
    assert worker.popen.wait(60) != 0
    assert "IZZATI_WORKER_ROUTES='/a,/c': no route /c (the routes: /a, /b)" in worker.output()
