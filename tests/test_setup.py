"""Load once per process: a callback with setup() under `python -m app` (real processes)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc

Spawn = Callable[..., Proc]


def start(spawn: Spawn, tmp_path: Path, **env: str) -> tuple[Proc, str, Path]:
    port = free_tcp_port()
    log = tmp_path / "setups.log"
    full = {
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_CALLBACK": "setupmodel:Model",
        "SETUP_LOG": str(log),
        "TEARDOWN_LOG": str(tmp_path / "teardowns.log"),
        **env,
    }
    proc = spawn([PYTHON, "-m", "app"], env=full)
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "health", proc=proc.popen)
    return proc, url, log


def wait_ready(url: str, timeout: float = 30) -> list[httpx.Response]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(url + "ready")
        seen.append(r)
        if r.status_code == 200:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"not ready within {timeout} s: {seen[-1].text}")


def test_setup_runs_once_per_process_before_work_and_ready_says_so(spawn: Spawn, tmp_path: Path) -> None:
    proc, url, log = start(spawn, tmp_path, SETUP_SECONDS="2")
    early = httpx.get(url + "ready")
    assert early.status_code == 503 and early.json()["status"] == "setting up"
    assert httpx.get(url + "health").status_code == 200  # alive meanwhile
    seen = wait_ready(url)
    assert any("setting up" in r.text for r in seen)
    reply = httpx.post(url, data={"a": "1"}).json()
    assert reply["sum"] == 6 and reply["loaded_by"] == reply["pid"]
    lines = log.read_text().splitlines()
    # one server process sets up once, and runs the memory:// jobs with that same model
    assert [line.split()[1] for line in lines] == ["izzati-server-0"]
    job = httpx.post(url + "jobs", data={"a": "1"}).json()["id"]
    deadline = time.monotonic() + 20
    while (status := httpx.get(f"{url}jobs/{job}").json())["status"] != "done" and time.monotonic() < deadline:
        time.sleep(0.05)
    result = httpx.get(f"{url}jobs/{job}/result").json()
    assert result["sum"] == 6 and result["loaded_by"] == result["pid"] == reply["pid"], status
    assert "setup of setupmodel:Model took" in proc.output()
    proc.signal(signal.SIGTERM)
    proc.popen.wait(20)
    assert (tmp_path / "teardowns.log").read_text().split() == [str(reply["pid"])]  # teardown at shutdown
    assert len(log.read_text().splitlines()) == 1


def _job_results(url: str, count: int) -> list[dict[str, Any]]:
    ids = [httpx.post(url + "jobs", data={"a": str(n)}).json()["id"] for n in range(count)]
    results = []
    for job in ids:
        deadline = time.monotonic() + 30
        while (status := httpx.get(f"{url}jobs/{job}").json())["status"] != "done":
            assert time.monotonic() < deadline and status["status"] in ("queued", "running"), status
            time.sleep(0.05)
        results.append(httpx.get(f"{url}jobs/{job}/result").json())
    return results


def test_with_two_server_processes_setup_runs_exactly_twice_jobs_included(spawn: Spawn, tmp_path: Path) -> None:
    # memory:// with jobs on (the defaults): no process loads a copy of the model of its own
    proc, url, log = start(spawn, tmp_path, SETUP_SECONDS="1", IZZATI_WORKERS="2")
    wait_ready(url)
    pids = {httpx.post(url).json()["loaded_by"] for _ in range(60)}  # new connections: both processes
    results = _job_results(url, 6)
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    assert {int(line.split()[0]) for line in lines} == pids
    assert {r["pid"] for r in results} <= pids and all(r["loaded_by"] == r["pid"] for r in results)
    assert proc.popen.pid not in pids


def test_a_setup_that_raises_ends_the_server_with_exit_code_1(spawn: Spawn, tmp_path: Path) -> None:
    port = free_tcp_port()
    env = {
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_CALLBACK": "setupmodel:Model",
        "IZZATI_JOBS": "false",
        "SETUP_FAIL_IN": "everywhere",
    }
    proc = spawn([PYTHON, "-m", "app"], env=env)
    assert proc.popen.wait(30) == 1
    output = proc.output()
    assert "setup of setupmodel:Model raised" in output
    assert "RuntimeError: no weights in izzati-server-0" in output  # the traceback is in the log


def test_a_server_killed_mid_job_starts_again_and_its_job_runs_again(spawn: Spawn, tmp_path: Path) -> None:
    # the job runs in a server process: the process dies, the supervisor starts it again (its
    # setup once more), and the job it held runs again there
    proc, url, log = start(spawn, tmp_path, IZZATI_WORKERS="2", IZZATI_JOB_RETRIES="0", IZZATI_JOB_MAX_ATTEMPTS="3")
    wait_ready(url)
    held = tmp_path / "held"
    job = httpx.post(url + "jobs", data={"hold": str(held)}).json()["id"]
    deadline = time.monotonic() + 20
    while not held.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    runner = int(held.read_text())
    os.kill(runner, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while (status := httpx.get(f"{url}jobs/{job}").json())["status"] != "done":
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status["attempt"] == 2
    result = httpx.get(f"{url}jobs/{job}/result").json()
    assert result["pid"] != runner
    setups = [int(line.split()[0]) for line in log.read_text().splitlines()]
    assert len(setups) == 3 and runner in setups and result["loaded_by"] in setups  # 2, and the new one
    assert "izzati-server-" in proc.output() and "exited with -9: starting it again" in proc.output()
    wait_ready(url)


def test_a_redis_worker_sets_up_before_its_first_job(redis_server: str, spawn: Spawn, tmp_path: Path) -> None:
    log = tmp_path / "setups.log"
    env = {
        "IZZATI_QUEUE_URL": redis_server,
        "IZZATI_CALLBACK": "setupmodel:Model",
        "IZZATI_JOB_DIR": str(tmp_path / "jobs"),
        "IZZATI_HOST": "127.0.0.1",
        "SETUP_LOG": str(log),
        "SETUP_SECONDS": "1",
    }
    port = free_tcp_port()
    web = spawn([PYTHON, "-m", "app"], env={**env, "IZZATI_PORT": str(port)})
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "health", proc=web.popen)
    worker = spawn([PYTHON, "-m", "app", "worker"], env=env)
    job = httpx.post(url + "jobs", data={"a": "1"}).json()["id"]
    deadline = time.monotonic() + 30
    while (status := httpx.get(f"{url}jobs/{job}").json())["status"] != "done" and time.monotonic() < deadline:
        time.sleep(0.05)
    result = httpx.get(f"{url}jobs/{job}/result").json()
    assert result["sum"] == 6 and result["loaded_by"] == result["pid"] == worker.popen.pid, status
    pids = [int(line.split()[0]) for line in log.read_text().splitlines()]
    [server] = [pid for pid in pids if pid != worker.popen.pid]  # once in each process
    assert Path(f"/proc/{server}/stat").read_text().rsplit(")", 1)[1].split()[2] == str(web.popen.pid)
    assert "setup of setupmodel:Model took" in worker.output()


def _group(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _post_quietly(url: str) -> None:
    with contextlib.suppress(httpx.HTTPError):  # whatever the answer, or none when the server goes
        httpx.post(url, timeout=30)


def _start_hanging(spawn: Spawn, **env: str) -> tuple[Proc, str]:
    port = free_tcp_port()
    full = {
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_CALLBACK": "hangingsetup:Model",
        "IZZATI_GRACEFUL_TIMEOUT": "3",
        **env,
    }
    proc = spawn([PYTHON, "-m", "app"], env=full)
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "health", proc=proc.popen)
    return proc, url


def test_a_request_during_a_hanging_setup_is_answered_within_the_callback_timeout(spawn: Spawn) -> None:
    proc, url = _start_hanging(spawn, IZZATI_CALLBACK_TIMEOUT="1")
    started = time.monotonic()
    r = httpx.post(url, data={"a": "1"}, timeout=30)
    assert time.monotonic() - started < 10
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "setting_up" and "setting up" in r.json()["detail"]
    assert int(r.headers["retry-after"]) >= 1
    assert httpx.get(url + "health").status_code == 200  # the server lives on, still setting up


@pytest.mark.parametrize("signals", [[signal.SIGTERM], [signal.SIGTERM, signal.SIGTERM], [signal.SIGINT]])
def test_a_hanging_setup_does_not_keep_the_process_tree_alive(spawn: Spawn, signals: list[int]) -> None:
    proc, url = _start_hanging(spawn)
    deadline = time.monotonic() + 20
    while len(_group(proc.popen.pid)) < 2:  # the web process and its memory:// job runner
        assert time.monotonic() < deadline, _group(proc.popen.pid)
        time.sleep(0.05)
    waiting = threading.Thread(target=_post_quietly, args=(url,), daemon=True)
    waiting.start()  # a request waiting for the setup, as a client's would
    time.sleep(0.2)
    for sig in signals:
        proc.signal(sig)
        time.sleep(0.2)
    proc.popen.wait(3 + 10)  # the grace period, and time to stop (SIGKILL of a stuck child included)
    deadline = time.monotonic() + 5
    while _group(proc.popen.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _group(proc.popen.pid) == []
