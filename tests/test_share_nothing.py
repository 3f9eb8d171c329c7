"""Share nothing but Redis and an object store: 2 web processes and 2 workers, each with its own
private temp folder, one redis-server, one SeaweedFS; 200 jobs with 1 MiB inputs.

Each process runs in a mount namespace of its own where the other processes' folders are empty,
read-only tmpfs mounts: a file one process leaves in its folder (a result kept on a worker's disk,
its path put in Redis) cannot be read by another, as on separate hosts. Every result a web serves
is also compared with the object in the bucket.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
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
# Jobs outlive the run however loaded the machine (a 40 s TTL expired queued jobs at a load
# average of 18); at the end a worker with a 2 s TTL sweeps them all.
TTL = 600.0
SWEEP_TTL = 2.0
QUEUED = 50  # jobs sent before any worker runs (the rest while they run)
NODES = ("web-0", "web-1", "worker-0", "worker-1", "worker-2", "sweeper")
# in a new mount namespace, hide every other node's folder under an empty read-only tmpfs, then run
_HIDE = 'for d in "$@"; do [ "$d" = -- ] && break; mount -t tmpfs -o ro,size=4k,mode=0 none "$d" || exit 97; done'
HIDE_OTHERS = _HIDE + '\nwhile [ "$1" != -- ]; do shift; done; shift; exec "$@"'


def isolated(base: Path, name: str, argv: list[str]) -> list[str]:
    """`argv` run where the folders of the nodes other than `name` (under `base`) are empty."""
    others = [str(base / other) for other in NODES if other != name]
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", HIDE_OTHERS, "sh", *others, "--", *argv]


def _folders(base: Path) -> None:
    """Every node's folders, made before any node starts (so each can hide all the others')."""
    for name in NODES:
        (base / name / "tmp").mkdir(parents=True)
        (base / name / "jobs").mkdir()
        (base / name / "sentinel").write_text(name)
    # the isolation itself: a node reads its own folder, and finds another's empty
    own = subprocess.run(isolated(base, "web-0", ["cat", str(base / "web-0" / "sentinel")]), capture_output=True)
    if own.returncode != 0 or own.stdout != b"web-0":
        pytest.fail(f"no private mount namespace here (needs root and util-linux's unshare): {own.stderr!r}")
    other = subprocess.run(isolated(base, "web-0", ["ls", "-A", str(base / "worker-0")]), capture_output=True)
    assert other.returncode == 0 and other.stdout == b"", other


class Node:
    """One process of the service, with its own temp folder and job folder (both left unused by
    the jobs: nothing may depend on another process seeing them), which no other node can see."""

    def __init__(self, spawn: Spawn, env: dict[str, str], base: Path, name: str, args: list[str]) -> None:
        self.base, self.name, self.root = base, name, base / name
        (self.root / "sentinel").unlink(missing_ok=True)
        self.env = {**env, "TMPDIR": str(self.root / "tmp"), "IZZATI_JOB_DIR": str(self.root / "jobs")}
        self.spawn, self.args = spawn, args
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = self.start()

    def start(self) -> Proc:
        argv = isolated(self.base, self.name, [PYTHON, "-m", "app", *self.args])  # exec'd: the same pid
        self.proc = self.spawn(argv, env={**self.env, "IZZATI_PORT": str(self.port)})
        if self.args:
            self.proc.wait_output(lambda out: "started on" in out, timeout=30)
        else:
            wait_for_http(self.url + "/health", timeout=30, proc=self.proc.popen)
        return self.proc

    def leftovers(self) -> list[Path]:
        """Files left in its folders, but the metrics' own (per-process counters, not job files)."""
        found = (path for path in self.root.rglob("*") if path.is_file())
        return sorted(path for path in found if not any(part.startswith("izzati-metrics-") for part in path.parts))


def _submit(web: str, n: int, body: bytes, mode: str = "digest", until: Path | None = None) -> str:
    """Submit a job, retried (with its Idempotency-Key, so never twice) while its web restarts; a
    slow job runs `until` that file exists (in no node's folder: every node sees it) or is cancelled."""
    fields = {"n": str(n), "mode": mode, **({"until": str(until)} if until else {})}
    deadline = time.monotonic() + 30
    while True:
        try:
            r = httpx.post(
                f"{web}/jobs",
                data=fields,
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


def _wait(web: str, job_id: str, states: tuple[str, ...], timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (status := _status(web, job_id))["status"] not in states:
        assert time.monotonic() < deadline, f"job {job_id} not in {states}: {status}"
        time.sleep(0.05)
    return status


@pytest.mark.timeout(600)  # 200 MiB through S3, a restart, a kill; minutes at a load average of 18
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
    _folders(tmp_path)
    webs = [Node(spawn, env, tmp_path, f"web-{i}", []) for i in range(2)]
    a, b = webs[0].url, webs[1].url
    digests: dict[str, tuple[int, str, str]] = {}  # job id -> (n, mode, sha256 of its input)

    def submit(n: int) -> None:
        body = os.urandom(MiB)
        mode = "file" if n % 4 == 0 else "digest"
        job_id = _submit(webs[n % 2].url, n, body, mode)
        digests[job_id] = (n, mode, hashlib.sha256(body).hexdigest())

    # a slow job first (the one a worker is killed in), then some jobs, queued: no worker yet
    release = tmp_path / "release"  # the slow job ends once it exists (the others are cancelled)
    slow = _submit(a, -1, b"", "slow", release)
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

    objects = seaweed.client()

    def check(job_id: str) -> None:
        """Its status and result, read from the web it was not sent to, as soon as it is done; the
        result is the object in the bucket."""
        n, mode, digest = digests[job_id]
        other = webs[(n + 1) % 2].url
        assert _wait(other, job_id, ("done",))["error"] is None
        r = httpx.get(f"{other}/jobs/{job_id}/result", timeout=30)
        assert r.status_code == 200
        stored = objects.get_object(Bucket=bucket, Key=f"jobs/{job_id}/result")["Body"].read()
        assert stored == r.content, f"job {job_id}: its result is not the object in the bucket"
        if mode == "file":
            assert r.headers["content-disposition"] == 'attachment; filename="echo.bin"'
            assert int(r.headers["content-length"]) == MiB and hashlib.sha256(r.content).hexdigest() == digest
        else:
            assert r.json() == {"sha256": digest, "size": MiB, "n": str(n)}

    checks = ThreadPoolExecutor(24)  # each job is checked as it ends, well within its TTL (mostly waiting)
    try:
        # workers come; the one that takes the slow job is SIGKILLed in the middle of it
        workers = [Node(spawn, env, tmp_path, f"worker-{i}", ["worker"]) for i in range(2)]
        verified = [checks.submit(check, job_id) for job_id in list(digests)]
        running = _wait(b, slow, ("running",))
        while not (running["progress"] or {}).get("message"):
            running = _status(b, slow)
        pid = int(running["progress"]["message"].removeprefix("pid "))
        [victim] = [worker for worker in workers if worker.proc.popen.pid == pid]
        victim.proc.signal(signal.SIGKILL)
        victim.proc.popen.wait(10)
        workers.remove(victim)
        workers.append(Node(spawn, env, tmp_path, "worker-2", ["worker"]))
        release.touch()  # its second attempt, on another worker, runs to its end
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
    holding = [_submit(a, 1000 + i, b"", "slow", tmp_path / "never") for i in range(len(workers))]
    for job_id in holding:
        _wait(b, job_id, ("running",))
    queued = _submit(a, 2000, b"", "slow", tmp_path / "never")
    assert _status(b, queued)["status"] == "queued"
    for job_id in [queued, *holding]:
        assert httpx.delete(f"{b}/jobs/{job_id}").json()["status"] == "cancelled"
    for job_id in [queued, *holding]:
        assert _status(a, job_id)["status"] == "cancelled"
        assert httpx.get(f"{a}/jobs/{job_id}/result").json()["error"] == "cancelled"
    assert _status(a, queued)["attempt"] == 0

    # every file went through the object store: no process left one in its private folders (nor
    # did the killed worker, whose job was the slow one, which writes no file)
    for node in [*webs, *workers, victim]:
        assert node.leftovers() == [], node.root
    # a job runner whose TTL they have all outlived sweeps them: the bucket is left empty
    assert seaweed.count(bucket) > 0
    time.sleep(SWEEP_TTL)
    Node(spawn, {**env, "IZZATI_JOB_TTL": str(SWEEP_TTL)}, tmp_path, "sweeper", ["worker"])
    deadline = time.monotonic() + 60
    while (left := seaweed.count(bucket)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == 0
    assert httpx.get(f"{b}/jobs/{slow}").status_code == 404
