"""The fleet survives poison: web + 3 workers on a real Redis, 1,000 good items among 20 poison ones
of three kinds (an undecodable entry, an item that raises, an item that kills its process), with
the test restarting dead workers as a supervisor (compose, Kubernetes) would."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis

from izzati.queues import RedisQueue
from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc

pytestmark = pytest.mark.redis

Spawn = Callable[..., Proc]
GOOD, POISON_EACH, WORKERS, MAX_DELIVERIES = 1000, (7, 7, 6), 3, 3


def test_poison_items_are_parked_and_every_good_item_is_processed_once(
    redis_server: str, spawn: Spawn, tmp_path: Path
) -> None:
    results = tmp_path / "results.txt"
    env = {
        "IZZATI_QUEUE_URL": redis_server,
        "IZZATI_CALLBACK": "chaos:callback",
        "IZZATI_WORKER": "chaos:worker",
        "IZZATI_WORKER_ARGS": json.dumps([str(results)]),
        "IZZATI_REDELIVERY_TIMEOUT": "1",
        "IZZATI_MAX_DELIVERIES": str(MAX_DELIVERIES),
        "IZZATI_JOBS": "false",
        "IZZATI_HOST": "127.0.0.1",
    }
    port = free_tcp_port()
    web = spawn([PYTHON, "-m", "app"], env={**env, "IZZATI_PORT": str(port)})
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "health", proc=web.popen)

    undecodable, raising, killing = POISON_EACH
    plan = ["good"] * GOOD + ["undecodable"] * undecodable + ["raise"] * raising + ["kill"] * killing
    random.Random(7).shuffle(plan)
    raw = redis.Redis.from_url(redis_server)
    started = time.monotonic()
    with httpx.Client(timeout=30) as client:
        for n, kind in enumerate(plan):
            if kind == "undecodable":
                raw.xadd("izzati:stream", {"d": f"{{not json {n}".encode()})
            else:
                assert client.post(url, data={"kind": kind, "n": str(n)}).status_code == 200

    workers = [spawn([PYTHON, "-m", "app", "worker"], env=env) for _ in range(WORKERS)]
    restarts = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        for index, worker in enumerate(workers):
            if worker.popen.poll() is not None:  # a supervisor starts a new one
                workers[index] = spawn([PYTHON, "-m", "app", "worker"], env=env)
                restarts += 1
        done = results.read_text().count("\n") if results.exists() else 0
        if done >= GOOD and raw.xlen("izzati:dead") >= sum(POISON_EACH):
            break
        time.sleep(0.2)
    drained = time.monotonic() - started

    processed = Counter(int(line.split()[0]) for line in results.read_text().splitlines())
    good = {n for n, kind in enumerate(plan) if kind == "good"}
    assert set(processed) == good, "every good item processed"
    assert max(processed.values()) == 1, "and exactly once"
    parked = RedisQueue(redis_server).dead_letters.entries(1000)
    reasons = Counter(letter.reason.split(":")[0].split(" ")[0] for letter in parked)
    assert len(parked) == sum(POISON_EACH)
    assert reasons == {"undecodable": undecodable, "delivered": raising + killing}
    delivered = [letter.deliveries for letter in parked if letter.reason.startswith("delivered")]
    assert delivered == [MAX_DELIVERIES] * (raising + killing), "each poison item ended MAX_DELIVERIES workers"
    # no crash loop: each raising or killing item ends at most MAX_DELIVERIES workers, then the fleet is quiet
    assert restarts <= (raising + killing) * MAX_DELIVERIES
    time.sleep(2)
    assert all(worker.popen.poll() is None for worker in workers)
    assert raw.xlen("izzati:stream") == 0
    ready = httpx.get(url + "ready").json()
    assert ready["status"] == "ready" and ready["dead_letters"] == {"izzati": sum(POISON_EACH)}
    print(  # the figures for the closing note (pytest -s shows them)
        f"\nchaos: {len(processed)} good items processed once, {len(parked)} parked {dict(reasons)}, "
        f"drained in {drained:.1f} s, {restarts} worker restarts"
    )
