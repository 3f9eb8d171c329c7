"""What the Kubernetes manifests rely on, run for real here without a cluster: the numbers KEDA's
redis-streams triggers read from a real Redis as real izzati queues are used, and the web pod's
readiness probe command against a real web server, worker and Redis."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis

from izzati.assembly import build_jobs, open_settings_queue
from izzati.queues.redis import RedisQueue
from izzati.settings import Settings
from tests.support.http import wait_for_http
from tests.support.kubernetes import DEPLOY, Manifest, find, render
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis

Spawn = Callable[..., Proc]


def keda_reads(client: redis.Redis, trigger: Manifest) -> int:
    """The value one redis-streams trigger gets, as KEDA v2.20.2 reads it (redis_streams_scaler.go)."""
    md = trigger["metadata"]
    stream = md["stream"]
    if "consumerGroup" not in md:
        return int(client.xlen(stream))  # streamLength: XLEN
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError as exc:
        assert "no such key" in str(exc)
        return 0  # no stream yet
    for group in groups:
        if group["name"] == md["consumerGroup"].encode():
            # Redis answers nil when it cannot tell the lag; KEDA's client reads that as -1
            # (go-redis 9.9+; 0 before): either way, no backlog
            return -1 if group["lag"] is None else int(group["lag"])
    return int(client.xlen(stream))  # no group yet: KEDA counts the stream's length instead


def workers_asked(client: redis.Redis, triggers: list[Manifest], stream: str) -> tuple[int, int | None]:
    """(workers KEDA asks for from this stream's triggers, the lag Redis reports or None)."""
    asked = 0
    lag: int | None = None
    for trigger in (t for t in triggers if t["metadata"]["stream"] == stream):
        md = trigger["metadata"]
        value = keda_reads(client, trigger)
        target = int(md.get("lagCount") or md["streamLength"])
        if value > int(md["activationLagCount"]):
            asked = max(asked, math.ceil(value / target))
        if "lagCount" in md:
            lag = None if value < 0 else value
    return asked, lag


@pytest.fixture
def queues(redis_server: str, tmp_path: Path) -> Iterator[dict[str, RedisQueue]]:
    """The item queue and the jobs queue exactly as the service opens them, by stream key."""
    settings = Settings(_env_file=None, queue_url=redis_server, job_dir=str(tmp_path))
    items = open_settings_queue(settings)
    jobs = build_jobs(settings)
    assert isinstance(items, RedisQueue) and jobs is not None and isinstance(jobs.queue, RedisQueue)
    opened = {f"{q.name}:stream": q for q in (items, jobs.queue)}
    yield opened
    for q in opened.values():
        q.close()


def check(client: redis.Redis, triggers: list[Manifest], stream: str, waiting: int, busy: int, step: str) -> None:
    """KEDA asks for a worker per unfinished item; the lag, when Redis can tell it, is the backlog."""
    asked, lag = workers_asked(client, triggers, stream)
    assert asked >= waiting + busy, f"{stream}, {step}: KEDA asks for {asked} workers"
    assert asked > 0 or waiting + busy == 0, f"{stream}, {step}: nothing wakes a worker"
    assert lag is None or lag == waiting, f"{stream}, {step}: lag {lag}, {waiting} waiting"


@pytest.mark.parametrize("which", ["items", "jobs"])
def test_keda_asks_a_worker_for_every_unfinished_item(
    queues: dict[str, RedisQueue], redis_server: str, which: str
) -> None:
    triggers = find(render(DEPLOY / "base"), "ScaledObject", "izzati-worker")["spec"]["triggers"]
    assert {t["metadata"]["stream"] for t in triggers} == set(queues), "the scaler watches other streams"
    stream = [s for s in queues if (":jobs:" in s) == (which == "jobs")][0]
    producer = queues[stream]
    client = redis.Redis.from_url(redis_server)
    a, b = (RedisQueue(redis_server, name=producer.name) for _ in range(2))
    check(client, triggers, stream, 0, 0, "nothing queued")
    producer.put(1)
    check(client, triggers, stream, 1, 0, "the first item, no worker yet (no consumer group either)")
    for n in range(2, 6):
        producer.put(n)
    a.get(timeout=5)
    b.get(timeout=5)
    check(client, triggers, stream, 3, 2, "2 of 5 taken")
    b.task_done()
    # Redis 7.0 answers nil for the lag here (B acknowledged, so deleted, the newest item
    # delivered while an older one is still in the stream): only XLEN sees the 3 waiting
    check(client, triggers, stream, 3, 1, "B acknowledged the newest item while A holds an older one")
    for _ in range(3):
        b.get(timeout=5)
        b.task_done()
    check(client, triggers, stream, 0, 1, "all taken, A at work: the lag alone would let KEDA stop A")
    producer.put(6)
    producer.put(7)
    check(client, triggers, stream, 2, 1, "2 more queued while A is at work")  # nil lag again on Redis 7.0
    a.task_done()
    for _ in range(2):
        b.get(timeout=5)
        b.task_done()
    check(client, triggers, stream, 0, 0, "all done")
    assert workers_asked(client, triggers, stream) == (0, 0)  # KEDA may go back to zero workers
    for q in (a, b):
        q.close()
    client.close()


def _ready(url: str) -> tuple[int, Any]:
    r = httpx.get(url + "ready", timeout=10)
    return r.status_code, r.json()


def test_readiness_probe_keeps_web_ready_without_workers(redis_proc: RedisServer, spawn: Spawn) -> None:
    web = find(render(DEPLOY / "base"), "Deployment", "izzati-web")
    [container] = web["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    manifest_env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    port = free_tcp_port()
    env = {"IZZATI_QUEUE_URL": redis_proc.url, "IZZATI_HOST": "127.0.0.1", "IZZATI_REDELIVERY_TIMEOUT": "2"}
    server = spawn([PYTHON, "-m", "app"], env={**env, **manifest_env, "IZZATI_PORT": str(port)})
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "health", proc=server.popen)
    status, report = _ready(url)
    assert (status, report["workers"], report["queue"]) == (200, 0, "ok"), "no worker (KEDA at zero): still ready"
    spawn([PYTHON, "-m", "app", "worker"], env=env)
    assert _wait(lambda: _ready(url)[1]["workers"] == 1), "the worker never showed up in /ready"
    assert _ready(url)[0] == 200
    redis_proc.stop()
    status, report = _ready(url)
    assert (status, report["queue"]) == (503, "unreachable"), "a web pod that cannot queue must leave the Service"


def _wait(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _acl_rules() -> dict[str, str]:
    """The `ACL SETUSER` lines of docs/operate.md, by user name."""
    text = (DEPLOY.parent.parent / "docs" / "operate.md").read_text()
    lines = [line.split(" ", 2)[2] for line in text.splitlines() if line.startswith("ACL SETUSER ")]
    return {line.split()[0]: line.split(" ", 1)[1] for line in lines}


def test_the_documented_redis_acls_are_enough(redis_proc: RedisServer, spawn: Spawn, tmp_path: Path) -> None:
    rules = _acl_rules()
    assert set(rules) == {"izzati", "keda"}
    admin = redis.Redis(port=redis_proc.port)
    for user, rule in rules.items():
        cast(Any, admin).execute_command("ACL", "SETUSER", user, *rule.replace("PASSWORD", f"{user}-pw").split())
    url = f"redis://izzati:izzati-pw@127.0.0.1:{redis_proc.port}/0"
    env = {"IZZATI_QUEUE_URL": url, "IZZATI_HOST": "127.0.0.1", "IZZATI_JOB_DIR": str(tmp_path)}
    port = free_tcp_port()
    spawn([PYTHON, "-m", "app"], env={**env, "IZZATI_PORT": str(port)})
    base = f"http://127.0.0.1:{port}"
    wait_for_http(base + "/health")
    worker = spawn([PYTHON, "-m", "app", "worker"], env=env)
    assert httpx.post(base + "/", data={"acl": "item"}).status_code == 200
    worker.wait_output(lambda out: '{"acl": "item"}' in out)
    job = httpx.post(base + "/", data={"acl": "job"}, headers={"prefer": "respond-async"}).json()["id"]
    assert _wait(lambda: httpx.get(f"{base}/jobs/{job}").json()["status"] == "done"), (
        httpx.get(f"{base}/jobs/{job}").json(),
        worker.output()[-3000:],
    )
    assert httpx.get(base + "/ready").json()["status"] == "ready"
    assert "NOPERM" not in worker.output()
    # KEDA's user reads what the triggers read, and can change nothing
    keda = redis.Redis(port=redis_proc.port, username="keda", password="keda-pw")
    triggers = find(render(DEPLOY / "base"), "ScaledObject", "izzati-worker")["spec"]["triggers"]
    assert [keda_reads(keda, t) for t in triggers] == [0, 0, 0, 0]
    with pytest.raises(redis.exceptions.NoPermissionError):
        keda.xadd("izzati:stream", {"d": "1"})
    keda.close()
    admin.close()
