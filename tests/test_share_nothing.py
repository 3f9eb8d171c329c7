"""Share nothing but Redis and an object store: 2 web processes and 2 workers, each with its own
private temp folder, one redis-server, one SeaweedFS; 200 jobs with 1 MiB inputs."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc
from tests.support.redis_server import RedisServer
from tests.support.seaweed import SeaweedServer

pytestmark = pytest.mark.redis

Spawn = Callable[..., Proc]
MiB = 1024 * 1024
JOBS = 200
TTL = 40.0  # long enough for every job to be checked under load, short enough to wait out
QUEUED = 50  # jobs sent before any worker runs (the rest while they run)


class Node:
    """One process of the service, with its own temp folder and job folder (both left unused by
    the jobs: nothing may depend on another process seeing them)."""

    def __init__(self, spawn: Spawn, env: dict[str, str], root: Path, args: list[str]) -> None:
        self.root = root
        (root / "tmp").mkdir(parents=True)
        (root / "jobs").mkdir()
        self.env = {**env, "TMPDIR": str(root / "tmp"), "IZZATI_JOB_DIR": str(root / "jobs")}
        self.spawn, self.args = spawn, args
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = self.start()

    def start(self) -> Proc:
        self.proc = self.spawn([PYTHON, "-m", "app", *self.args], env={**self.env, "IZZATI_PORT": str(self.port)})
        if self.args:
            self.proc.wait_output(lambda out: "started on" in out, timeout=30)
        else:
            wait_for_http(self.url + "/health", timeout=30, proc=self.proc.popen)
        return self.proc

    def leftovers(self) -> list[Path]:
        """Files left in its folders, but the metrics' own (per-process counters, not job files)."""
        found = (path for path in self.root.rglob("*") if path.is_file())
        return sorted(path for path in found if not any(part.startswith("izzati-metrics-") for part in path.parts))


def _submit(web: str, n: int, body: bytes, mode: str = "digest") -> str:
    """Submit a job, retried (with its Idempotency-Key, so never twice) while its web restarts."""
    deadline = time.monotonic() + 30
    while True:
        try:
            r = httpx.post(
                f"{web}/jobs",
                data={"n": str(n), "mode": mode},
                files={"file": (f"in-{n}.bin", body)},
                headers={"idempotency-key": f"job-{n}"},
                timeout=30,
            )
            assert r.status_code == 202, r.text
            job_id: str = r.json()["id"]
            return job_id
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _status(web: str, job_id: str) -> dict[str, Any]:
    r = httpx.get(f"{web}/jobs/{job_id}", timeout=30)
    assert r.status_code == 200, r.text
    status: dict[str, Any] = r.json()
    return status


def _wait(web: str, job_id: str, states: tuple[str, ...], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (status := _status(web, job_id))["status"] not in states:
        assert time.monotonic() < deadline, f"job {job_id} not in {states}: {status}"
        time.sleep(0.05)
    return status


def test_two_webs_and_two_workers_share_nothing_but_redis_and_s3(
    redis_proc: RedisServer, seaweed: SeaweedServer, bucket: str, spawn: Spawn, tmp_path: Path
) -> None:
    env = {
        "IZZATI_QUEUE_URL": redis_proc.url,
        "IZZATI_JOB_STORE": f"s3://{bucket}/jobs",
        "IZZATI_CALLBACK": "sharenothing:handle",
        "IZZATI_REDELIVERY_TIMEOUT": "2",
        "IZZATI_JOB_TTL": str(TTL),
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_ACCESS_LOG": "false",
        "IZZATI_GRACEFUL_TIMEOUT": "5",
        **seaweed.env(),
    }
    webs = [Node(spawn, env, tmp_path / f"web-{i}", []) for i in range(2)]
    a, b = webs[0].url, webs[1].url
    digests: dict[str, tuple[int, str, str]] = {}  # job id -> (n, mode, sha256 of its input)

    def submit(n: int) -> None:
        body = os.urandom(MiB)
        mode = "file" if n % 4 == 0 else "digest"
        job_id = _submit(webs[n % 2].url, n, body, mode)
        digests[job_id] = (n, mode, hashlib.sha256(body).hexdigest())

    # a slow job first (the one a worker is killed in), then some jobs, queued: no worker yet
    slow = _submit(a, -1, b"", "slow")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(submit, range(QUEUED)))
    assert _submit(b, 0, b"another body", "digest") in digests  # the same key on the other web: the same job
    assert {_status(b, job_id)["status"] for job_id in [slow, *digests]} == {"queued"}

    # a web restarted with jobs queued: they are all still there, seen from both webs
    webs[0].proc.signal(signal.SIGTERM)
    assert webs[0].proc.popen.wait(20) in (0, 143)  # a graceful stop on SIGTERM
    webs[0].start()
    for job_id in list(digests)[:20]:
        assert _status(a, job_id)["status"] == _status(b, job_id)["status"] == "queued"

    def check(job_id: str) -> None:
        """Its status and result, read from the web it was not sent to, as soon as it is done."""
        n, mode, digest = digests[job_id]
        other = webs[(n + 1) % 2].url
        assert _wait(other, job_id, ("done",))["error"] is None
        r = httpx.get(f"{other}/jobs/{job_id}/result", timeout=30)
        assert r.status_code == 200
        if mode == "file":
            assert r.headers["content-disposition"] == 'attachment; filename="echo.bin"'
            assert int(r.headers["content-length"]) == MiB and hashlib.sha256(r.content).hexdigest() == digest
        else:
            assert r.json() == {"sha256": digest, "size": MiB, "n": str(n)}

    checks = ThreadPoolExecutor(24)  # each job is checked as it ends, well within its TTL (mostly waiting)
    try:
        # workers come; the one that takes the slow job is SIGKILLed in the middle of it
        workers = [Node(spawn, env, tmp_path / f"worker-{i}", ["worker"]) for i in range(2)]
        verified = [checks.submit(check, job_id) for job_id in list(digests)]
        running = _wait(b, slow, ("running",))
        while not (running["progress"] or {}).get("message"):
            running = _status(b, slow)
        pid = int(running["progress"]["message"].removeprefix("pid "))
        [victim] = [worker for worker in workers if worker.proc.popen.pid == pid]
        victim.proc.signal(signal.SIGKILL)
        victim.proc.popen.wait(10)
        workers.remove(victim)
        workers.append(Node(spawn, env, tmp_path / "worker-2", ["worker"]))
        killed = checks.submit(_wait, a, slow, ("done",))

        # the rest while the workers run; nothing lost
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(submit, range(QUEUED, JOBS)))
        assert len(digests) == JOBS
        verified += [checks.submit(check, job_id) for job_id in list(digests)[QUEUED:]]
        for future in verified:
            future.result()
        assert killed.result()["attempt"] == 2  # redelivered to another worker, run again to its end
    finally:
        checks.shutdown(wait=False, cancel_futures=True)

    # cancel from the other web: a running job (its callback sees it) and a queued one (never runs)
    holding = [_submit(a, 1000 + i, b"", "slow") for i in range(len(workers))]
    for job_id in holding:
        _wait(b, job_id, ("running",))
    queued = _submit(a, 2000, b"", "slow")
    assert _status(b, queued)["status"] == "queued"
    for job_id in [queued, *holding]:
        assert httpx.delete(f"{b}/jobs/{job_id}").json()["status"] == "cancelled"
    for job_id in [queued, *holding]:
        assert _status(a, job_id)["status"] == "cancelled"
        assert httpx.get(f"{a}/jobs/{job_id}/result").json()["error"] == "cancelled"
    assert _status(a, queued)["attempt"] == 0

    # every file went through the object store: no process left one in its private folders
    for node in [*webs, *workers]:
        assert node.leftovers() == [], node.root
    # after the TTL the sweep leaves the bucket empty
    assert seaweed.count(bucket) > 0
    deadline = time.monotonic() + TTL + 30
    while (left := seaweed.count(bucket)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == 0
    assert httpx.get(f"{b}/jobs/{slow}").status_code == 404
