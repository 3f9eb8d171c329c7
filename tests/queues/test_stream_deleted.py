"""A stream deleted under a blocked reader (DEL, FLUSHDB, an eviction) on a real redis-server: the
reader gets `UNBLOCKED the stream key no longer exists`; the queue recreates its group and goes on."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from izzati.queues import RedisQueue
from tests.support.processes import PYTHON, Proc

pytestmark = pytest.mark.redis

Spawn = Callable[..., Proc]


def _blocked_in_xreadgroup(r: redis.Redis) -> bool:
    return any(c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "") for c in r.client_list())


def _wait_blocked(r: redis.Redis) -> None:
    deadline = time.monotonic() + 10
    while not _blocked_in_xreadgroup(r):
        assert time.monotonic() < deadline, "the reader never blocked in XREADGROUP"
        time.sleep(0.005)


@pytest.mark.parametrize("wipe", ["del", "flushdb"])
def test_a_blocked_get_survives_its_stream_being_deleted(redis_server: str, wipe: str) -> None:
    q = RedisQueue(redis_server, redelivery_timeout=8.0)  # long read chunks: the DEL lands in one
    r = redis.Redis.from_url(redis_server)
    q.put("before")
    assert q.get(timeout=5) == "before"
    got: list[Any] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            got.append(q.get(timeout=20))
        except BaseException as exc:  # noqa: BLE001 - the test reports what escaped
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    _wait_blocked(r)
    if wipe == "del":
        r.delete("izzati:stream")
    else:
        r.flushdb()
    time.sleep(0.2)  # the reader has its UNBLOCKED reply
    q2 = RedisQueue(redis_server)
    q2.put("after")
    thread.join(20)
    assert errors == [] and got == ["after"]
    q.task_done()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.1)
    q.close()
    q2.close()


def test_a_worker_process_goes_on_after_its_stream_is_deleted(redis_server: str, spawn: Spawn, tmp_path: Path) -> None:
    (tmp_path / "deletedwork.py").write_text(
        "def process(q):\n    while True:\n        print('processed', q.get(), flush=True)\n"
    )
    worker = spawn(
        [PYTHON, "-m", "izzati.cli", "worker", "deletedwork:process", "--queue", redis_server],
        env={"IZZATI_REDELIVERY_TIMEOUT": "8"},
    )
    worker.wait_output(lambda out: "started on" in out)
    r = redis.Redis.from_url(redis_server)
    q = RedisQueue(redis_server)

    def delete() -> None:
        r.delete("izzati:stream")

    def flush() -> None:
        r.flushdb()

    for n, wipe in enumerate([delete, flush, delete]):
        q.put(f"item {n}")
        worker.wait_output(lambda out: f"processed item {n}" in out)  # noqa: B023 - used at once
        _wait_blocked(r)
        wipe()
        time.sleep(0.2)
    q.put("last")
    worker.wait_output(lambda out: "processed last" in out)
    assert worker.popen.poll() is None, worker.output()
    q.close()
