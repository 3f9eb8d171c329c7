"""Every error reply is JSON, also those the HTTP layer sends before or after the app (end to end,
through `python -m app`)."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc

Spawn = Callable[..., Proc]


def start_web(spawn: Spawn, env: dict[str, str]) -> tuple[Proc, int]:
    port = free_tcp_port()
    proc = spawn(
        [PYTHON, "-m", "app"], env={"IZZATI_HOST": "127.0.0.1", "IZZATI_PORT": str(port), "IZZATI_JOBS": "false", **env}
    )
    wait_for_http(f"http://127.0.0.1:{port}/health", proc=proc.popen)
    return proc, port


def raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def assert_json_error(headers: dict[str, str], body: bytes, code: str) -> dict[str, Any]:
    assert headers["content-type"] == "application/json"
    reply: dict[str, Any] = json.loads(body)
    assert set(reply) == {"error", "detail"} and reply["error"] == code, reply
    return reply


def test_malformed_http_is_a_json_400(spawn: Spawn) -> None:
    proc, port = start_web(spawn, {})
    status, headers, body = raw(port, b"GARBAGE / NOT-HTTP\r\n\r\n")
    assert status == 400
    assert_json_error(headers, body, "bad_request")
    status, headers, body = raw(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
    assert status == 400
    assert_json_error(headers, body, "bad_request")


def test_over_the_connection_limit_is_a_json_503(spawn: Spawn) -> None:
    proc, port = start_web(spawn, {"IZZATI_MAX_CONNECTIONS": "2"})
    with socket.create_connection(("127.0.0.1", port), timeout=10):  # one idle connection held open
        time.sleep(0.2)
        request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        status, headers, body = raw(port, request)  # the second: at the limit
    assert status == 503
    assert headers["retry-after"] == "1"
    assert_json_error(headers, body, "service_unavailable")


def test_a_request_cut_off_by_the_shutdown_grace_gets_a_json_500(spawn: Spawn) -> None:
    proc, port = start_web(spawn, {"IZZATI_CALLBACK": "slow:handle", "IZZATI_GRACEFUL_TIMEOUT": "1"})
    replies: list[httpx.Response] = []

    def call() -> None:
        replies.append(httpx.post(f"http://127.0.0.1:{port}/", data={"seconds": "20"}, timeout=30))

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.5)  # the request is in the callback
    proc.signal(signal.SIGTERM)
    caller.join(30)
    [reply] = replies
    assert reply.status_code == 500
    assert_json_error(dict(reply.headers), reply.content, "internal_error")
    assert "grace" in reply.json()["detail"]


def _handshake(path: str, key: bool = True) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade"]
    lines.append("Sec-WebSocket-Version: 13")
    if key:
        lines.append("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_websocket_handshake_gets_a_json_reply_and_no_log_line(spawn: Spawn) -> None:
    # izzati has no WebSocket endpoint: a handshake is an ordinary GET, answered by the routes
    proc, port = start_web(spawn, {})
    status, headers, body = raw(port, _handshake("/nowhere"))
    assert status == 404
    assert_json_error(headers, body, "not_found")
    status, headers, body = raw(port, _handshake("/", key=False))  # a handshake the protocol refuses
    assert status == 405 and headers["content-type"] == "application/json"
    status, headers, body = raw(port, _handshake("/health"))
    assert status == 200 and json.loads(body)["status"] == "ok"
    raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert "upgrade" not in proc.output().lower() and "websocket" not in proc.output().lower()
