"""A restarted child of the web process (memory://: the worker, the job runner) starts as its first
start did: it stops on the service's SIGTERM, and it dies with a SIGKILLed web. It once inherited
uvicorn's SIGTERM handler from the running web process, and ignored both."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc

Spawn = Callable[..., Proc]
GRACE = 3.0


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while (alive := {pid for pid in pids if _alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def _service_with_restarted_children(spawn: Spawn) -> tuple[Proc, set[int]]:
    """A memory:// service whose worker and job runner were both killed and started again."""
    port = free_tcp_port()
    env = {
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_CALLBACK": "jobwork:handle",
        "IZZATI_GRACEFUL_TIMEOUT": str(GRACE),
    }
    proc = spawn([PYTHON, "-m", "app"], env=env)
    wait_for_http(f"http://127.0.0.1:{port}/health", proc=proc.popen)
    first = _children(proc.popen.pid)
    assert len(first) == 2, first  # the memory:// worker and the job runner
    for pid in first:
        os.kill(pid, signal.SIGKILL)
    out = proc.wait_output(lambda text: text.count("started again (pid") == 2, timeout=30)
    restarted = {int(pid) for pid in re.findall(r"started again \(pid (\d+)\)", out)}
    assert restarted == _children(proc.popen.pid)
    return proc, restarted


def test_sigterm_stops_a_service_whose_children_were_restarted(spawn: Spawn) -> None:
    proc, restarted = _service_with_restarted_children(spawn)
    proc.signal(signal.SIGTERM)
    assert proc.popen.wait(GRACE + 10) == 128 + signal.SIGTERM
    assert _wait_gone(restarted, 5) == set()


def test_a_restarted_child_dies_with_a_sigkilled_web(spawn: Spawn) -> None:
    proc, restarted = _service_with_restarted_children(spawn)
    proc.signal(signal.SIGKILL)
    proc.popen.wait(10)
    assert _wait_gone(restarted, 10) == set()  # no orphans with parent 1


def test_a_server_running_a_job_dies_within_the_grace_of_a_sigkilled_web(spawn: Spawn, tmp_path: Path) -> None:
    """A server process holding a long job when its supervisor is SIGKILLed stops within
    IZZATI_GRACEFUL_TIMEOUT (uvicorn's grace, then the job's), not the 30 s default."""
    port = free_tcp_port()
    env = {
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_CALLBACK": "jobwork:handle",
        "IZZATI_GRACEFUL_TIMEOUT": str(GRACE),
    }
    proc = spawn([PYTHON, "-m", "app"], env=env)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/ready", proc=proc.popen)
    started = tmp_path / "started"
    fields = {"mode": "hold", "seconds": "120", "saw_cancel": str(tmp_path / "x"), "started": str(started)}
    r = httpx.post(url, data=fields, headers={"Prefer": "respond-async"})
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 20
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    server = int(started.read_text())
    assert server in _children(proc.popen.pid)
    proc.signal(signal.SIGKILL)
    proc.popen.wait(10)
    assert _wait_gone({server}, 2 * GRACE + 8) == set()  # it lived 30 s past uvicorn's grace
