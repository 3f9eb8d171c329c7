"""`Prefer: respond-async, wait=N` and a client that hangs up: the wait ends with the client, as a
plain `POST /` call does, instead of holding one of the server's connection slots for N seconds."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc

Spawn = Callable[..., Proc]
LIMIT = 8  # IZZATI_MAX_CONNECTIONS: uvicorn takes LIMIT - 1 connections at once (it counts the new one)


def _submit_and_hang_up(port: int, n: int) -> socket.socket:
    body = f"mode=hold&seconds=60&saw_cancel=/dev/null&n={n}".encode()
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nPrefer: respond-async, wait=600\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head + body)
    sock.settimeout(0.5)
    try:
        early = sock.recv(200)  # a request that waits for its job answers nothing yet
    except TimeoutError:
        return sock
    raise AssertionError(f"request {n} was answered at once: {early!r}")


def test_hung_up_waits_free_the_server(spawn: Spawn, tmp_path: Path) -> None:
    port = free_tcp_port()
    env = {
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_CALLBACK": "jobwork:handle",
        "IZZATI_MAX_CONNECTIONS": str(LIMIT),
        "IZZATI_JOB_DIR": str(tmp_path / "jobs"),
    }
    web = spawn([PYTHON, "-m", "app"], env=env)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/health", proc=web.popen)
    jobs_dir = tmp_path / "jobs"
    for round_ in range(3):  # three times the limit of hung-up waits, over time
        socks = [_submit_and_hang_up(port, round_ * LIMIT + i) for i in range(LIMIT - 1)]
        deadline = time.monotonic() + 30
        while len(list(jobs_dir.glob("*/job.json"))) < (round_ + 1) * (LIMIT - 1):  # submitted, now waiting
            assert time.monotonic() < deadline, f"round {round_}: {web.output()[-2000:]}"
            time.sleep(0.05)
        for sock in socks:
            sock.close()  # the clients hang up while their requests wait for the jobs
        started = time.monotonic()
        while (reply := httpx.get(url + "/health", timeout=5)).status_code != 200:
            assert time.monotonic() - started < 5, f"round {round_}: {reply.status_code} {reply.text}"
            time.sleep(0.1)
    assert httpx.get(url + "/ready", timeout=5).status_code == 200
