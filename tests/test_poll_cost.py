"""What a poll costs Redis does not grow with the backlog or the keyspace: `/ready` and a queued
job's `GET /jobs/<id>` on a real redis-server, counted with `INFO commandstats` (not timed)."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from izzati import Backend
from izzati.jobs.objects import ObjectStore
from izzati.jobs.redisstore import RedisJobStore
from izzati.jobs.service import JobService
from izzati.queues import RedisQueue
from izzati.queues.heartbeats import Heartbeats

pytestmark = pytest.mark.redis

Client = Callable[..., httpx.Client]


def echo(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
    return text


@pytest.fixture
def r(redis_server: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server)
    yield client
    client.close()


def _calls(r: redis.Redis) -> dict[str, int]:
    """Calls per command since the last reset (the test's own INFO and RESETSTAT not counted)."""
    stats = r.info("commandstats")
    found = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    return {name: calls for name, calls in found.items() if name not in ("info", "config|resetstat")}


def _cost(r: redis.Redis, poll: Callable[[], None], times: int = 5) -> dict[str, int]:
    poll()  # warm: scripts loaded, connections open
    r.config_resetstat()
    for _ in range(times):
        poll()
    return _calls(r)


def _unrelated_keys(r: redis.Redis, n: int) -> None:
    for start in range(0, n, 10_000):
        r.mset({f"other:{i}": b"x" for i in range(start, min(start + 10_000, n))})


def test_ready_costs_the_same_with_many_unrelated_keys(client_for: Client, redis_server: str, r: redis.Redis) -> None:
    # a worker's heartbeat (beaten here, not by its thread: no beat while the probes are counted)
    beats = Heartbeats(redis.Redis.from_url(redis_server), "izzati")
    beats.beat("worker-1", 120_000)
    client = client_for(Backend(echo, queue=redis_server).app)

    def ready() -> None:
        reply = client.get("/ready")
        assert reply.status_code == 200 and reply.json()["workers"] == 1, reply.text

    few = _cost(r, ready)
    _unrelated_keys(r, 200_000)
    many = _cost(r, ready)
    assert "scan" not in many and "keys" not in many, many
    assert many == few  # the same commands, as many of them, whatever else the database holds
    beats.forget("worker-1")
    assert client.get("/ready").json()["workers"] == 0  # a worker that left no longer counts
    beats.beat("worker-2", 200)
    assert client.get("/ready").json()["workers"] == 1
    time.sleep(0.3)
    assert client.get("/ready").json()["workers"] == 0  # nor one whose heartbeat expired
    worker = RedisQueue(redis_server)  # and a real consumer's heartbeat counts
    with pytest.raises(queue.Empty):
        worker.get(timeout=0.01)
    assert client.get("/ready").json()["workers"] == 1
    worker.close()
    assert client.get("/ready").json()["workers"] == 0


def test_a_queued_jobs_status_costs_the_same_whatever_the_backlog(
    client_for: Client, redis_server: str, object_store: ObjectStore, r: redis.Redis
) -> None:
    jobs = JobService(RedisJobStore(redis_server, object_store, name="pc"), RedisQueue(redis_server, name="pc:jobs"))
    client = client_for(Backend(echo, job_service=jobs).app)
    first = jobs.submit({"n": 0}, [])["id"]
    second = jobs.submit({"n": 1}, [])["id"]

    def status(job_id: str, place: int) -> Callable[[], None]:
        def poll() -> None:
            reply = client.get(f"/jobs/{job_id}").json()
            assert reply["status"] == "queued" and reply["position"] == place, reply

        return poll

    short = _cost(r, status(second, 1))
    for n in range(2, 2_000):
        jobs.submit({"n": n}, [])
    last = jobs.submit({"n": "last"}, [])["id"]
    long = _cost(r, status(last, 2_000))
    assert "xrange" not in long and "scan" not in long, long
    assert long == short  # the same commands, as many of them, for a backlog 1,000 times longer
    jobs.cancel(first)  # out of the line: everyone behind it moves up
    status(second, 0)()
    status(last, 1_999)()
