"""The gate: API key, CORS, request id, header limit, access log; timeouts; readiness."""

from __future__ import annotations

import asyncio
import logging
import queue as queue_module
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from izzati import Backend, Limits, RedisQueue
from tests.support.redis_server import RedisServer

Client = Callable[..., httpx.Client]


def echo(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
    return {"text": text}


def test_api_key_required_everywhere_but_probes(client_for: Client) -> None:
    client = client_for(Backend(echo, api_key="s3cret").app)
    for method, path in [("POST", "/"), ("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/nope")]:
        r = client.request(method, path)
        assert r.status_code == 401, path
        assert r.headers["content-type"] == "application/json"
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"] == "unauthorized"
    assert client.post("/", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/", headers={"authorization": "s3cret"}).status_code == 401
    assert client.post("/", headers={"authorization": "bearer s3cret"}).status_code == 200  # RFC 7235
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200
    r = client.post("/", data={"a": "1"}, headers={"authorization": "Bearer s3cret"})
    assert r.json() == {"text": {"a": "1"}}


def test_cors_preflight_and_headers(client_for: Client) -> None:
    client = client_for(Backend(echo, cors_origins=["http://app.test"], api_key="k").app)
    preflight = client.options(
        "/",
        headers={
            "origin": "http://app.test",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://app.test"
    r = client.post("/", headers={"origin": "http://app.test", "authorization": "Bearer k"})
    assert r.headers["access-control-allow-origin"] == "http://app.test"
    # a 401 carries the CORS headers too, so a browser page can show it
    r = client.post("/", headers={"origin": "http://app.test"})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == "http://app.test"
    r = client.post("/", headers={"origin": "http://evil.test", "authorization": "Bearer k"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_off_by_default(client_for: Client) -> None:
    r = client_for(Backend(echo).app).post("/", headers={"origin": "http://app.test"})
    assert "access-control-allow-origin" not in r.headers


def test_request_id_is_echoed_or_made(client_for: Client, caplog: pytest.LogCaptureFixture) -> None:
    client = client_for(Backend(echo).app)
    with caplog.at_level(logging.INFO, logger="izzati.access"):
        r = client.post("/", headers={"x-request-id": "abc-123"})
        assert r.headers["x-request-id"] == "abc-123"
        made = client.get("/health").headers["x-request-id"]
        assert len(made) == 32
        bad = client.get("/health", headers={"x-request-id": "<script> x" * 20}).headers["x-request-id"]
        assert "<" not in bad and len(bad) == 32
    lines = [record.getMessage() for record in caplog.records if record.name == "izzati.access"]
    assert any(
        line.startswith("method=POST path=/ status=200 duration_ms=") and "request_id=abc-123" in line for line in lines
    ), lines
    assert any("method=GET path=/health status=200" in line and made in line for line in lines)


def test_headers_over_limit_are_431(client_for: Client) -> None:
    client = client_for(Backend(echo, limits=Limits(max_header_bytes=2048)).app)
    r = client.post("/", headers={"x-big": "a" * 3000})
    assert r.status_code == 431
    assert r.json()["error"] == "headers_too_large"
    assert client.post("/").status_code == 200


def test_callback_timeout_is_504(client_for: Client) -> None:
    def slow(text: dict[str, Any], data: list[Any]) -> str:
        time.sleep(1.0)
        return "late"

    async def slow_async(text: dict[str, Any], data: list[Any]) -> str:
        await asyncio.sleep(5)
        return "late"

    for callback in (slow, slow_async):
        client = client_for(Backend(callback, callback_timeout=0.2).app)
        started = time.monotonic()
        r = client.post("/")
        assert r.status_code == 504
        assert r.json()["error"] == "callback_timeout"
        assert time.monotonic() - started < 0.9


def test_stalled_body_is_408_and_server_keeps_serving(serve: Callable[..., str]) -> None:
    url = serve(Backend(echo, limits=Limits(read_timeout=0.5)).app)
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 100\r\n\r\na=1"
        )
        # meanwhile, other clients are served
        assert httpx.post(url, data={"b": "2"}).json() == {"text": {"b": "2"}}
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408")
    assert b'"error":"request_timeout"' in reply
    assert b"connection: close" in reply.lower()


def test_ready_reflects_queue_and_workers(client_for: Client, redis_proc: RedisServer) -> None:
    queue = RedisQueue(redis_proc.url, name="readiness", redelivery_timeout=2)
    client = client_for(Backend(echo, queue=queue).app)
    r = client.get("/ready")
    expected = {"status": "unavailable", "queue": "ok", "workers": 0, "dead_letters": {"readiness": 0}}
    assert (r.status_code, r.json()) == (503, expected)
    worker = RedisQueue(redis_proc.url, name="readiness", redelivery_timeout=2)
    try:
        with pytest.raises(queue_module.Empty):
            worker.get(timeout=0.1)  # a get() starts the worker's heartbeat
        r = client.get("/ready")
        assert (r.status_code, r.json()["workers"]) == (200, 1)
        redis_proc.stop()
        r = client.get("/ready")
        assert (r.status_code, r.json()["queue"]) == (503, "unreachable")
        assert client.get("/health").status_code == 200  # liveness is not readiness
        redis_proc.start()
        deadline = time.monotonic() + 10
        while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
            worker_ping = worker.ping()
            time.sleep(0.2)
        assert client.get("/ready").status_code == 200, worker_ping
    finally:
        worker.close()
        queue.close()


def test_ready_without_a_queue_is_ready(client_for: Client) -> None:
    assert client_for(Backend(echo).app).get("/ready").json() == {"status": "ready", "queue": "none"}


def test_a_client_that_hangs_up_mid_upload_is_logged_as_499(
    serve: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    url = serve(Backend(echo).app)
    port = int(url.rsplit(":", 1)[1])
    with caplog.at_level(logging.INFO, logger="izzati.access"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                b"X-Request-ID: gone-1\r\nContent-Length: 100000\r\n\r\na=1"
            )
            time.sleep(0.2)
        deadline = time.monotonic() + 5
        while "request_id=gone-1" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    line = next(r.getMessage() for r in caplog.records if "request_id=gone-1" in r.getMessage())
    assert "status=499" in line
