"""A frozen object store (the real SeaweedFS, SIGSTOPped) never starves the probes or the Redis-only
routes of a real service, and the calls that need it end with a prompt 503 `store_unavailable`."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc
from tests.support.redis_server import RedisServer
from tests.support.seaweed import SeaweedServer

pytestmark = pytest.mark.redis

Spawn = Callable[..., Proc]
PROMPT = 3.0  # seconds: a probe that takes longer than this waits on something it does not need
BLOCKED = 12  # submits with a file in flight while the store is frozen (more than the default executor's threads)


def test_a_frozen_object_store_starves_nothing_that_does_not_need_it(
    redis_proc: RedisServer, seaweed: SeaweedServer, bucket: str, spawn: Spawn
) -> None:
    port = free_tcp_port()
    env = {
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_QUEUE_URL": redis_proc.url,
        "IZZATI_JOB_STORE": f"s3://{bucket}/jobs",
        "IZZATI_CALLBACK": "jobwork:handle",
        "IZZATI_READY_WITHOUT_WORKERS": "true",
        **seaweed.env(),
    }
    web = spawn([PYTHON, "-m", "app"], env=env)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/health", timeout=30, proc=web.popen)
    warm = httpx.post(url + "/jobs", data={"n": "0"}, files={"f": ("a.txt", b"warm")}, timeout=30)
    assert warm.status_code == 202, warm.text
    job = warm.json()["id"]
    assert seaweed.proc is not None
    replies: list[tuple[float, int, str]] = []

    def submit_with_a_file(n: int) -> None:
        started = time.monotonic()
        reply = httpx.post(url + "/jobs", data={"n": str(n)}, files={"f": ("a.txt", b"x" * 1000)}, timeout=120)
        replies.append((time.monotonic() - started, reply.status_code, reply.text))

    os.kill(seaweed.proc.pid, signal.SIGSTOP)
    try:
        threads = [threading.Thread(target=submit_with_a_file, args=(n,)) for n in range(BLOCKED)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # they wait on the frozen store now
        for method, path, ok in [
            ("GET", "/health", {200}),
            ("GET", "/ready", {200}),
            ("GET", "/metrics", {200}),
            ("GET", f"/jobs/{job}", {200}),
            ("POST", "/jobs", {202}),  # no file: Redis only
        ]:
            started = time.monotonic()
            reply = httpx.request(method, url + path, timeout=PROMPT + 5)
            took = time.monotonic() - started
            assert took < PROMPT and reply.status_code in ok, (path, took, reply.status_code, reply.text[:300])
        for thread in threads:
            thread.join(60)
        assert len(replies) == BLOCKED
        for took, status, text in replies:  # the store's own timeouts end them, with a JSON 503
            assert status == 503 and '"error":"store_unavailable"' in text.replace(" ", ""), (status, text)
            assert took < 20, took
    finally:
        os.kill(seaweed.proc.pid, signal.SIGCONT)
    again = httpx.post(url + "/jobs", data={"n": "1"}, files={"f": ("a.txt", b"thawed")}, timeout=60)
    assert again.status_code == 202, again.text


def test_the_store_pool_refuses_at_once_when_every_thread_waits() -> None:
    import asyncio

    from izzati.exceptions import JobStoreUnavailable
    from izzati.web.storepool import StorePool

    pool = StorePool(size=2)
    frozen = threading.Event()

    async def main() -> None:
        held = [asyncio.ensure_future(pool.run(lambda: frozen.wait(30))) for _ in range(2)]
        await asyncio.sleep(0.1)
        started = time.monotonic()
        with pytest.raises(JobStoreUnavailable, match="all 2 threads"):
            await pool.run(lambda: "never run")
        assert time.monotonic() - started < 0.5
        held[0].cancel()  # a caller that stops waiting does not free a thread that still waits
        with pytest.raises(JobStoreUnavailable):
            await pool.run(lambda: "never run")
        frozen.set()
        assert await held[1] is True
        assert await pool.run(lambda: "thawed") == "thawed"

    asyncio.run(main())
