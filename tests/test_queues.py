"""The queue adapter against real parts: multiprocessing, forked processes, redis-server."""

from __future__ import annotations

import collections
import json
import multiprocessing.process
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from izzati._process import mp_context
from izzati.exceptions import ConfigError, QueueClosed, QueueUnavailable
from izzati.queues import MemoryQueue, Queue, RedisQueue, open_queue
from tests.support.net import free_tcp_port
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
RT = 1.5  # a short redelivery timeout keeps the kill tests quick


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def start(target: Callable[..., None], *args: Any) -> multiprocessing.process.BaseProcess:
    """Start ``target(*args)`` in a forked process (izzati's multiprocessing context)."""
    proc = mp_context().Process(target=target, args=args, daemon=True)
    proc.start()
    assert isinstance(proc, multiprocessing.process.BaseProcess)
    return proc


@pytest.fixture
def procs() -> Iterator[list[multiprocessing.process.BaseProcess]]:
    """Processes a test starts; any still alive at the end are killed."""
    started: list[multiprocessing.process.BaseProcess] = []
    yield started
    for p in started:
        if p.is_alive():
            p.kill()
        p.join(5)


@pytest.fixture
def r(redis_server: str) -> Iterator[redis.Redis]:
    """A plain redis-py client for the test's own bookkeeping."""
    client = redis.Redis.from_url(redis_server, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def rq(redis_server: str) -> Iterator[RedisQueue]:
    """A RedisQueue with a short redelivery timeout."""
    q = RedisQueue(redis_server, redelivery_timeout=RT)
    yield q
    q.close()


def pending(r: redis.Redis, name: str = "izzati") -> int:
    """How many entries were taken from queue ``name`` but not acknowledged."""
    return int(r.xpending(f"{name}:stream", "izzati")["pending"])


# -- worker processes --------------------------------------------------------------------------


def echo_worker(url: str, results: str, rt: float = RT) -> None:
    """Take items until None, pushing each to the Redis list ``results``."""
    q = RedisQueue(url, redelivery_timeout=rt)
    out = redis.Redis.from_url(url)
    while (item := q.get()) is not None:
        out.rpush(results, json.dumps(item))
    q.task_done()
    q.close()


def hold_worker(url: str, rt: float, seconds: float, prefetch: int = 1) -> None:
    """Take one item, announce it on ``held``, hold it ``seconds`` (alive), then acknowledge."""
    q = RedisQueue(url, redelivery_timeout=rt, prefetch=prefetch)
    item = q.get()
    redis.Redis.from_url(url).rpush("held", json.dumps(item))
    time.sleep(seconds)
    q.task_done()
    redis.Redis.from_url(url).rpush("released", json.dumps(item))


def inherited_worker(q: RedisQueue, url: str) -> None:
    """Use a RedisQueue inherited through fork: take one item, report it and the consumer name."""
    item = q.get(timeout=10)
    q.task_done()
    redis.Redis.from_url(url).rpush("child", json.dumps([item, q.consumer]))


def memory_worker(q: MemoryQueue, out: MemoryQueue) -> None:
    """Double numbers from ``q`` into ``out`` until None."""
    while (item := q.get()) is not None:
        out.put(item * 2)


# -- memory:// ---------------------------------------------------------------------------------


def test_memory_queue_semantics() -> None:
    q = open_queue("memory://", maxsize=2)
    assert isinstance(q, MemoryQueue) and isinstance(q, Queue)
    assert q.empty() and q.qsize() == 0
    q.put({"a": 1})
    q.put_nowait(object())  # a memory queue pickles, so any picklable item goes
    with pytest.raises(queue.Full):
        q.put_nowait(3)
    t0 = time.monotonic()
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.2)
    assert time.monotonic() - t0 >= 0.19
    assert wait_for(lambda: q.qsize() == 2, 5, "qsize 2")
    assert q.get() == {"a": 1}
    assert type(q.get(timeout=1)) is object
    q.task_done()
    with pytest.raises(queue.Empty):
        q.get_nowait()
    t0 = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.2)
    assert time.monotonic() - t0 >= 0.19
    q.close()


def test_memory_queue_crosses_a_fork(procs: list[multiprocessing.process.BaseProcess]) -> None:
    q, out = MemoryQueue(), MemoryQueue()
    procs.append(start(memory_worker, q, out))
    for i in range(200):
        q.put(i)
    q.put(None)
    assert sorted(out.get(timeout=10) for _ in range(200)) == [2 * i for i in range(200)]
    procs[0].join(10)
    assert procs[0].exitcode == 0


# -- redis:// basics ---------------------------------------------------------------------------


def test_redis_queue_semantics(redis_server: str, r: redis.Redis) -> None:
    q = open_queue(redis_server, redelivery_timeout=RT)
    assert isinstance(q, RedisQueue) and isinstance(q, Queue)
    assert q.empty() and q.qsize() == 0
    items: list[Any] = [{"a": [1, 2.5, None, True]}, "ünïcode", 7, None, [1, "x"]]
    for item in items:
        q.put(item)
    q.put_nowait("last")
    assert q.qsize() == 6 and not q.empty()
    assert [q.get(timeout=1) for _ in items] == items
    assert q.get_nowait() == "last"
    assert q.empty()
    with pytest.raises(queue.Empty):
        q.get_nowait()
    t0 = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.3)
    assert 0.29 <= time.monotonic() - t0 < 0.9  # its 0.3 s, not three times that
    q.task_done()
    assert pending(r) == 0 and r.xlen("izzati:stream") == 0  # acknowledged entries are deleted
    q.close()
    with pytest.raises(QueueClosed):
        q.put(1)


def test_redis_queue_full(redis_server: str) -> None:
    q = RedisQueue(redis_server, maxsize=2)
    q.put(1)
    q.put(2)
    with pytest.raises(queue.Full):
        q.put_nowait(3)
    t0 = time.monotonic()
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.2)
    assert time.monotonic() - t0 >= 0.19
    assert q.get() == 1
    q.put(3, timeout=1)
    assert [q.get(), q.get()] == [2, 3]
    q.close()


@pytest.mark.parametrize("item", [{1, 2}, b"bytes", object(), {"nested": {"x": 1j}}])
def test_redis_refuses_non_json(rq: RedisQueue, item: Any) -> None:
    with pytest.raises(TypeError, match="JSON-serialisable; got "):
        rq.put(item)
    assert rq.qsize() == 0


def test_non_json_message_names_the_type(rq: RedisQueue) -> None:
    with pytest.raises(TypeError, match=r"got set: Object of type set"):
        rq.put({1})


def test_task_done_and_next_get_acknowledge(rq: RedisQueue, r: redis.Redis) -> None:
    for i in range(3):
        rq.put(i)
    assert rq.get() == 0
    assert pending(r) == 1
    rq.task_done()
    assert pending(r) == 0
    assert rq.get() == 1
    assert pending(r) == 1
    assert rq.get() == 2  # the spec's `while True: q.get()` loop acknowledges as it goes
    assert pending(r) == 1
    with pytest.raises(queue.Empty):
        rq.get(timeout=0.05)
    assert pending(r) == 0


def test_pickle_and_injected_client(redis_server: str) -> None:
    a = RedisQueue(redis_server, name="jobs", redelivery_timeout=RT)
    b = pickle.loads(pickle.dumps(a))
    assert isinstance(b, RedisQueue)
    assert (b.url, b.name) == (a.url, "jobs") and b.consumer != a.consumer
    a.put({"from": "a"})
    assert b.get(timeout=2) == {"from": "a"}
    client = redis.Redis.from_url(redis_server)
    c = RedisQueue(client=client, name="jobs")
    d = pickle.loads(pickle.dumps(c))
    c.put("via client")
    assert d.get(timeout=2) == "via client"
    for q in (a, b, c, d):
        q.close()
    client.close()


def test_ping_and_workers_alive(redis_proc: RedisServer, rq: RedisQueue) -> None:
    assert rq.ping() and rq.workers_alive() == 0
    with pytest.raises(queue.Empty):
        rq.get(timeout=0.01)
    assert rq.workers_alive() == 1
    rq.close()
    other = RedisQueue(redis_proc.url)
    assert other.workers_alive() == 0
    redis_proc.stop()
    assert not other.ping()
    other.close()


def test_queue_recreates_its_group_after_data_loss(rq: RedisQueue, r: redis.Redis) -> None:
    rq.put(1)
    assert rq.get() == 1
    r.flushall()  # what a restart without persistence looks like: no stream, no group
    rq.put(2)
    assert rq.get(timeout=5) == 2
    rq.task_done()
    assert pending(r) == 0


# -- processes ---------------------------------------------------------------------------------


def test_fork_gives_a_new_consumer(
    redis_server: str, r: redis.Redis, procs: list[multiprocessing.process.BaseProcess]
) -> None:
    q = RedisQueue(redis_server, redelivery_timeout=RT)
    q.put("warm up")
    assert q.get() == "warm up"  # the parent has a connection, a consumer and a heartbeat
    procs.append(start(inherited_worker, q, redis_server))
    q.put("for the child")
    got = wait_for(lambda: r.lpop("child"), 10, "the child's report")
    item, consumer = json.loads(got)
    assert item == "for the child" and consumer != q.consumer
    procs[0].join(10)
    assert procs[0].exitcode == 0
    q.close()


def test_cross_process_with_a_spawned_interpreter(redis_server: str, r: redis.Redis) -> None:
    code = (
        "import sys; from izzati.queues import open_queue\n"
        "q = open_queue(sys.argv[1])\n"
        "for i in range(100): q.put({'i': i})\n"
    )
    subprocess.run([sys.executable, "-c", code, redis_server], cwd=ROOT, check=True, timeout=60)
    q = RedisQueue(redis_server)
    assert [q.get(timeout=5)["i"] for _ in range(100)] == list(range(100))
    q.close()


def test_three_workers_process_1000_items_exactly_once(
    redis_server: str, r: redis.Redis, procs: list[multiprocessing.process.BaseProcess]
) -> None:
    procs.extend(start(echo_worker, redis_server, "results") for _ in range(3))
    q = RedisQueue(redis_server)
    for i in range(1000):
        q.put(i)
    for _ in procs:
        q.put(None)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    got = collections.Counter(json.loads(x) for x in r.lrange("results", 0, -1))
    assert got == collections.Counter(range(1000))
    assert pending(r) == 0 and q.qsize() == 0
    q.close()


def test_item_of_a_killed_worker_is_redelivered(
    redis_server: str, r: redis.Redis, procs: list[multiprocessing.process.BaseProcess]
) -> None:
    q = RedisQueue(redis_server, redelivery_timeout=RT)
    q.put({"job": 1})
    q.put({"job": 2})
    victim = start(hold_worker, redis_server, RT, 3600.0)
    procs.append(victim)
    assert json.loads(wait_for(lambda: r.lpop("held"), 10, "the victim's item")) == {"job": 1}
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(5)
    killed_at = time.monotonic()
    procs.append(start(echo_worker, redis_server, "results", RT))
    wait_for(lambda: r.llen("results") == 2, RT + 10, "both items after the kill")
    took = time.monotonic() - killed_at
    got = sorted(json.loads(x)["job"] for x in r.lrange("results", 0, -1))
    assert got == [1, 2]
    assert took < RT + 3, f"redelivered after {took:.2f}s"  # RT plus a process start
    q.put(None)
    procs[-1].join(10)
    assert pending(r) == 0
    q.close()


def test_prefetched_items_of_a_killed_worker_go_to_racing_workers_once(
    redis_server: str, r: redis.Redis, procs: list[multiprocessing.process.BaseProcess]
) -> None:
    q = RedisQueue(redis_server)
    for i in range(20):
        q.put(i)
    victim = start(hold_worker, redis_server, RT, 3600.0, 5)
    wait_for(lambda: r.llen("held") == 1, 10, "the victim's items")
    assert pending(r) == 5  # one returned by get() and four prefetched: all pending on the victim
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(5)
    procs.extend(start(echo_worker, redis_server, "results", RT) for _ in range(2))
    wait_for(lambda: r.llen("results") == 20, RT + 10, "all items after the kill")
    for _ in range(2):
        q.put(None)
    for p in procs:
        p.join(10)
        assert p.exitcode == 0
    got = collections.Counter(json.loads(x) for x in r.lrange("results", 0, -1))
    assert got == collections.Counter(range(20))
    assert pending(r) == 0
    q.close()


def test_slow_live_worker_keeps_its_item(
    redis_server: str, r: redis.Redis, procs: list[multiprocessing.process.BaseProcess]
) -> None:
    q = RedisQueue(redis_server, redelivery_timeout=RT)
    q.put("slow")
    procs.append(start(hold_worker, redis_server, RT, 3 * RT))
    wait_for(lambda: r.llen("held") == 1, 10, "the slow worker's item")
    with pytest.raises(queue.Empty):
        q.get(timeout=2 * RT)  # well past the redelivery timeout, and nothing was stolen
    wait_for(lambda: r.llen("released") == 1, 10 * RT, "the slow worker to finish")
    procs[0].join(10)
    assert pending(r) == 0
    with pytest.raises(queue.Empty):
        q.get_nowait()
    q.close()


# -- Redis restarts and outages ----------------------------------------------------------------


def test_items_survive_a_redis_restart(redis_proc: RedisServer) -> None:
    q = RedisQueue(redis_proc.url)
    for i in range(3):
        q.put(i)
    assert q.get() == 0  # taken, not acknowledged: it stays pending across the restart
    redis_proc.restart()
    assert [q.get(timeout=10), q.get(timeout=10)] == [1, 2]
    fresh = RedisQueue(redis_proc.url)
    assert fresh.qsize() == 0
    q.close()
    fresh.close()


def test_blocked_get_resumes_after_a_redis_restart(
    redis_proc: RedisServer, procs: list[multiprocessing.process.BaseProcess]
) -> None:
    q = RedisQueue(redis_proc.url, redelivery_timeout=RT)
    procs.append(start(echo_worker, redis_proc.url, "results"))
    wait_for(lambda: q.workers_alive() == 1, 10, "the worker to block in get()")
    redis_proc.restart()
    q.put("after restart")
    r = redis.Redis.from_url(redis_proc.url, decode_responses=True)
    got = wait_for(lambda: r.lpop("results"), 20, "the worker to get the item")
    assert json.loads(got) == "after restart"
    q.put(None)
    procs[0].join(10)
    assert procs[0].exitcode == 0
    q.close()
    r.close()


def test_put_waits_out_a_short_outage(redis_proc: RedisServer) -> None:
    q = RedisQueue(redis_proc.url, connect_timeout=20)
    q.put("before")
    redis_proc.stop()

    def come_back() -> None:
        time.sleep(0.5)  # the length of the outage, not a wait for a result
        redis_proc.start()

    thread = threading.Thread(target=come_back)
    thread.start()
    q.put("during")  # retries with backoff until Redis is back
    thread.join()
    assert [q.get(timeout=5), q.get(timeout=5)] == ["before", "during"]
    q.close()


def test_opening_an_unreachable_redis_retries_for_the_whole_connect_timeout() -> None:
    # retries after 0.1, 0.3, 0.7, 1.5 and 2.5 s: the next step (1 s) passes 3 s, and the last try
    # is at 3 s, not at 2.5 s while saying it waited 3
    t0 = time.monotonic()
    with pytest.raises(QueueUnavailable, match="did not answer within 3s"):
        open_queue(f"redis://127.0.0.1:{free_tcp_port()}/0", connect_timeout=3)
    assert 3.0 <= time.monotonic() - t0 < 5.0


def test_put_gives_up_with_queue_unavailable() -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_tcp_port()}/0"
    q = RedisQueue(url, connect_timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(QueueUnavailable, match=r"redis://:\*\*\*@127\.0\.0\.1:\d+/0") as exc:
        q.put("x")
    assert 0.4 < time.monotonic() - t0 < 1.5  # its 0.5 s connect timeout, not three times that
    assert "hunter2" not in str(exc.value)
    with pytest.raises(QueueUnavailable):
        q.get_nowait()
    with pytest.raises(QueueUnavailable):  # what reconcile() lists: the same error, not redis-py's own
        q.items()
    assert isinstance(exc.value, ConnectionError)
    q.close()


# -- resolver errors and imports ---------------------------------------------------------------


def test_unknown_scheme() -> None:
    with pytest.raises(ConfigError) as exc:
        open_queue("xyz://somewhere/0")
    assert str(exc.value) == ("unknown queue URL scheme 'xyz' in 'xyz://somewhere/0': use memory:// or redis://")
    with pytest.raises(ConfigError, match="unknown queue URL scheme ''"):
        open_queue("localhost:6379")


def test_unreachable_redis() -> None:
    url = f"redis://127.0.0.1:{free_tcp_port()}/0"
    t0 = time.monotonic()
    with pytest.raises(QueueUnavailable) as exc:
        open_queue(url, connect_timeout=1.0)
    assert 0.5 < time.monotonic() - t0 < 3  # its 1 s connect timeout, not three times that
    assert str(exc.value) == (f"Redis at {url} did not answer within 1s (is it running, and is the URL right?)")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_missing_redis_extra() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "from izzati.queues import open_queue\n"
        "try: open_queue('redis://127.0.0.1:1/0')\n"
        "except Exception as e: print(type(e).__name__, e)\n"
    )
    out = run_python(code)
    assert out.stdout.strip() == (
        "ConfigError queue URL 'redis://127.0.0.1:1/0' needs redis-py: pip install 'izzati[redis]'"
    ), out.stderr


def test_queue_modules_stay_light() -> None:
    # Load izzati's queue modules without izzati/__init__.py (which pulls in the web side).
    code = (
        "import sys, types, izzati._process\n"
        "import izzati.queues\n"
        "heavy = {'redis', 'fastapi', 'starlette', 'uvicorn'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    stub = f"import sys, types; p = types.ModuleType('izzati'); p.__path__ = ['{ROOT}/izzati']\n"
    stub += "sys.modules['izzati'] = p\n"
    out = run_python(stub + code)
    assert out.stdout.strip() == "[]", out.stderr


def test_mask_url_hides_any_password_and_never_raises() -> None:
    from izzati.queues import mask_url

    assert mask_url("redis://:pw@127.0.0.1:1/0") == "redis://:***@127.0.0.1:1/0"
    assert mask_url("redis://u:p@ss@127.0.0.1/0") == "redis://u:***@127.0.0.1/0"
    assert mask_url("http://u:secret@[") == "http://u:***@["  # malformed: masked, not refused
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
