"""Dead letters on a real Redis: what a worker cannot take is parked, listed, retried, purged."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import time
from typing import Any

import pytest
import redis

from izzati import background
from izzati.queues import RedisQueue, open_queue

pytestmark = pytest.mark.redis


def test_entries_that_are_not_izzati_items_are_parked_and_get_goes_on(redis_server: str) -> None:
    q = RedisQueue(redis_server, name="dl1")
    raw = redis.Redis.from_url(redis_server)
    q.put({"n": 1})
    raw.xadd("dl1:stream", {"d": b"{not json"})  # a redis-cli typo
    raw.xadd("dl1:stream", {"other": "producer"})  # someone else's entry
    raw.xadd("dl1:stream", {"d": b"\xff\xfe"})  # not even text
    q.put({"n": 2})
    assert q.get(timeout=5) == {"n": 1}
    assert q.get(timeout=5) == {"n": 2}  # never raises for someone else's bad data
    q.task_done()
    letters = q.dead_letters.entries()
    assert [letter.reason.split(":")[0] for letter in letters] == ["undecodable"] * 3
    assert "not JSON" in letters[0].reason and letters[0].fields == {"d": "{not json"}
    assert "no 'd' field; fields: other" in letters[1].reason and letters[1].fields == {"other": "producer"}
    assert all(letter.deliveries == 1 for letter in letters)
    assert raw.xlen("dl1:stream") == 0 and q.qsize() == 0  # acknowledged and removed: the queue flows
    q.close()


def _take_and_die(q: Any) -> None:
    q.get()
    os._exit(3)  # dies holding the item, as a segfault or an OOM kill would


def test_an_item_that_kills_its_workers_is_parked_after_max_deliveries(redis_server: str) -> None:
    options: dict[str, Any] = {"name": "dl2", "redelivery_timeout": 0.4, "max_deliveries": 3}
    q = open_queue(redis_server, **options)
    assert isinstance(q, RedisQueue)
    q.put({"poison": True})
    for _ in range(3):  # three workers take it and die with it
        process, _ = background(_take_and_die, queue=RedisQueue(redis_server, **options))
        process.join(20)
        assert process.exitcode == 3
    q.put({"good": 1})
    survivor = RedisQueue(redis_server, **options)
    received: list[Any] = []
    deadline = time.monotonic() + 10
    while (survivor.dead_letters.count() == 0 or not received) and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            received.append(survivor.get(timeout=0.3))
    assert received == [{"good": 1}]  # the poison item is not delivered a 4th time
    survivor.task_done()
    [letter] = survivor.dead_letters.entries()
    assert letter.deliveries == 3 and "delivered 3 times (IZZATI_MAX_DELIVERIES=3)" in letter.reason
    assert letter.fields == {"d": '{"poison":true}'}
    assert survivor.dead_letters.count() == 1
    # retry puts it back as it was; purge empties the stream
    [new_id] = survivor.dead_letters.retry([letter.id])
    assert survivor.get(timeout=5) == {"poison": True}
    survivor.task_done()
    assert survivor.dead_letters.count() == 0 and new_id
    raw = redis.Redis.from_url(redis_server)
    raw.xadd("dl2:stream", {"d": b"?"})
    with pytest.raises(queue.Empty):  # the bad entry is parked, not returned
        survivor.get(timeout=0.5)
    assert survivor.dead_letters.purge() == 1
    assert survivor.dead_letters.count() == 0
    q.close()
    survivor.close()


def test_a_slow_live_worker_keeps_its_item(redis_server: str) -> None:
    options: dict[str, Any] = {"name": "dl3", "redelivery_timeout": 0.4, "max_deliveries": 1}
    holder, other = RedisQueue(redis_server, **options), RedisQueue(redis_server, **options)
    holder.put("slow")
    assert holder.get(timeout=5) == "slow"
    deadline = time.monotonic() + 1.5  # several reclaim rounds of the other consumer
    while time.monotonic() < deadline:
        with pytest.raises(queue.Empty):
            other.get(timeout=0.2)
    assert holder.dead_letters.count() == 0  # alive (heartbeat): neither claimed nor parked
    holder.task_done()
    holder.close()
    other.close()


def _izzati(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IZZATI_")}
    command = [sys.executable, "-m", "izzati.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env={**clean, **(env or {})})


def test_the_dlq_commands(redis_server: str) -> None:
    raw = redis.Redis.from_url(redis_server)
    for name in ("izzati", "izzati:jobs"):
        q = RedisQueue(redis_server, name=name)
        raw.xadd(f"{name}:stream", {"d": b"{oops"})
        with pytest.raises(queue.Empty):
            q.get(timeout=0.3)
        q.close()
    listed = _izzati("dlq", "list", "--json", "--queue", redis_server)
    assert listed.returncode == 0, listed.stderr
    [letter] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert letter["fields"] == {"d": "{oops"} and letter["reason"].startswith("undecodable: not JSON")
    assert "1 parked in izzati:dead" in listed.stderr
    # the queue from the settings, as a service would have them
    human = _izzati("dlq", "list", "--jobs", env={"IZZATI_QUEUE_URL": redis_server})
    assert human.returncode == 0 and "deliveries=1" in human.stdout and "{oops" in human.stdout
    assert "1 parked in izzati:jobs:dead" in human.stderr
    assert _izzati("dlq", "retry", "--queue", redis_server).returncode == 2  # no ids, no --all
    retried = _izzati("dlq", "retry", letter["id"], "--queue", redis_server)
    assert retried.returncode == 0 and "1 put back on 'izzati'" in retried.stderr
    assert raw.xlen("izzati:stream") == 1 and raw.xlen("izzati:dead") == 0
    purged = _izzati("dlq", "purge", "--jobs", "--queue", redis_server)
    assert purged.returncode == 0 and "1 deleted from izzati:jobs:dead" in purged.stderr
    memory = _izzati("dlq", "list", "--queue", "memory://")
    assert memory.returncode == 2 and "dead letters exist only on a redis:// queue" in memory.stderr


def _take_two_and_die(q: Any) -> None:
    q.get()  # with prefetch=2 the read takes both entries: one returned, one buffered
    os._exit(3)


def test_a_survivor_claims_only_what_it_works_on(redis_server: str) -> None:
    # A claim counts a delivery: entries claimed in bulk but never tried (the claimer died on the
    # first) would creep towards the dead-letter stream without ever having been tried.
    options: dict[str, Any] = {"name": "dl4", "redelivery_timeout": 0.4}
    producer = RedisQueue(redis_server, **options)
    producer.put("first")
    producer.put("second")
    process, _ = background(_take_two_and_die, queue=RedisQueue(redis_server, prefetch=2, **options))
    process.join(20)
    assert process.exitcode == 3
    survivor = RedisQueue(redis_server, **options)
    assert survivor.get(timeout=10) == "first"
    raw = redis.Redis.from_url(redis_server)
    pending = raw.xpending_range("dl4:stream", "izzati", "-", "+", 10)
    assert sorted(int(entry["times_delivered"]) for entry in pending) == [1, 2]  # "second": one delivery
    assert survivor.get(timeout=10) == "second"
    survivor.task_done()
    producer.close()
    survivor.close()
