"""`rediss://` (TLS) and Redis ACL users, for the queues and the job store, against a real
redis-server that speaks only TLS with a self-signed certificate."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from izzati.assembly import build_jobs, load_settings
from izzati.exceptions import ConfigError
from izzati.files import UploadedFile
from izzati.invoker import Invoker
from izzati.jobs.model import JobStatus
from izzati.jobs.runner import JobRunner
from izzati.queues import open_queue
from tests.fixtures_redis import TLS_PASSWORD, TLS_USER
from tests.support.jobs import body_bytes
from tests.support.processes import PYTHON, Proc
from tests.support.redis_server import RedisServer
from tests.support.seaweed import SeaweedServer

pytestmark = pytest.mark.redis


def _url(server: RedisServer, password: str = TLS_PASSWORD, *, ca: bool = True) -> str:
    assert server.tls is not None
    query = f"?ssl_ca_certs={server.tls.ca}" if ca else ""
    return f"rediss://{TLS_USER}:{password}@127.0.0.1:{server.port}/0{query}"


def test_the_server_speaks_only_tls_and_only_to_its_user(tls_redis: RedisServer) -> None:
    plain = redis.Redis(host="127.0.0.1", port=tls_redis.port, socket_timeout=2, retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis.ConnectionError):
        plain.ping()
    assert tls_redis.tls is not None
    anonymous = redis.Redis.from_url(tls_redis.url)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    assert redis.Redis.from_url(_url(tls_redis)).ping()


def test_a_queue_over_tls_with_an_acl_user(tls_redis: RedisServer) -> None:
    queue = open_queue(_url(tls_redis), name="tls", connect_timeout=5)
    try:
        queue.put({"n": 1})
        assert queue.get(timeout=5) == {"n": 1}
        queue.task_done()
        assert queue.qsize() == 0
    finally:
        queue.close()


def test_jobs_over_tls_with_an_acl_user_and_s3(
    tls_redis: RedisServer, seaweed: SeaweedServer, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    settings = load_settings(queue_url=_url(tls_redis), job_store=f"s3://{bucket}/tls", queue_name="tls")
    jobs = build_jobs(settings)
    assert jobs is not None
    try:
        upload = UploadedFile(io.BytesIO(b"over tls"), "in.bin")
        job_id = jobs.submit({"n": "1"}, [upload], idempotency_key="tls-1")["id"]
        assert jobs.submit({}, [], idempotency_key="tls-1")["id"] == job_id
        assert jobs.queue.get(timeout=5) == {"id": job_id}

        def callback(text: dict[str, Any], data: list[UploadedFile]) -> bytes:
            return data[0].read()[::-1]

        JobRunner(Invoker(callback), jobs).run_one(job_id)
        jobs.queue.task_done()
        assert jobs.status(job_id)["status"] is JobStatus.DONE
        meta, body = jobs.result(job_id)
        assert meta["media_type"] == "application/octet-stream" and body_bytes(body) == b"slt revo"
        assert [kind for _, kind, _ in jobs.store.events(job_id)] == ["queued", "running", "result", "done"]
        assert seaweed.count(bucket, "tls/") == 2  # the input and the result
        client = redis.Redis.from_url(_url(tls_redis))
        assert client.exists(f"tls:job:rec:{job_id}") == 1
    finally:
        jobs.queue.close()


def test_a_wrong_password_is_one_clear_line_at_once(tls_redis: RedisServer) -> None:
    started = time.monotonic()
    settings = load_settings(queue_url=_url(tls_redis, "not-the-password"), job_store="s3://any/jobs")
    with pytest.raises(ConfigError) as caught:
        build_jobs(settings)
    message = str(caught.value)
    assert message.startswith("IZZATI_QUEUE_URL=") and "refused the login" in message
    assert "invalid username-password pair" in message and "not-the-password" not in message
    assert time.monotonic() - started < 5  # not the connect timeout's wait for a server that is up


def test_an_untrusted_certificate_says_how_to_trust_it(tls_redis: RedisServer) -> None:
    with pytest.raises(ConfigError, match=r"certificate is not trusted .*ssl_ca_certs=") as caught:
        open_queue(_url(tls_redis, ca=False), connect_timeout=5)
    assert TLS_PASSWORD not in str(caught.value)


def test_a_worker_given_a_wrong_password_exits_with_that_line(
    tls_redis: RedisServer, spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    worker = spawn([PYTHON, "-m", "app", "worker"], env={"IZZATI_QUEUE_URL": _url(tls_redis, "wrong-pw")})
    assert worker.popen.wait(30) != 0
    output = worker.output()
    assert "refused the login" in output and "wrong-pw" not in output and "Traceback" not in output
