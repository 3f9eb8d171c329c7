"""`python -m app`: web and worker processes configured only by environment variables."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from izzati.settingshelp import variables
from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, ROOT, Proc
from tests.support.redis_server import RedisServer

Spawn = Callable[..., Proc]


def start_web(spawn: Spawn, env: dict[str, str], cwd: Path | None = None) -> tuple[Proc, str]:
    port = free_tcp_port()
    proc = spawn([PYTHON, "-m", "app"], env={"IZZATI_HOST": "127.0.0.1", "IZZATI_PORT": str(port), **env}, cwd=cwd)
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "health", proc=proc.popen)
    return proc, url


def run_app(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    import os

    full = {k: v for k, v in os.environ.items() if not k.startswith("IZZATI_")}
    full["PYTHONPATH"] = str(ROOT)
    # a free loopback port: the start-up checks look at the port first, and 5020 may be taken on a shared machine
    full.update({"IZZATI_HOST": "127.0.0.1", "IZZATI_PORT": str(free_tcp_port())})
    full.update(env)
    return subprocess.run([PYTHON, "-m", "app", *args], env=full, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_defaults_serve_the_example_and_run_the_worker(spawn: Spawn, tmp_path: Path) -> None:
    proc, url = start_web(spawn, {})
    r = httpx.post(url, data={"name": "gus"}, files={"file": ("a.txt", b"x")})
    assert r.json() == {"text": {"name": "gus"}, "files": ["a.txt"]}
    proc.wait_output(lambda out: '{"name": "gus"}' in out)


def test_help_documents_every_setting(tmp_path: Path) -> None:
    result = run_app("--help", env={}, cwd=tmp_path)
    assert result.returncode == 0
    for name, default, _ in variables():
        assert f"{name}={default}" in result.stdout


def test_dotenv_and_callback_path(spawn: Spawn, tmp_path: Path) -> None:
    code = tmp_path / "usercode"
    code.mkdir()
    (code / "mycode.py").write_text(
        "def handle(text, data, q):\n    q.put(text['name'])\n    return {'mine': text['name']}\n"
    )
    (code / "jobs.py").write_text(
        "def work(q, prefix):\n    while True:\n        print(prefix + q.get(), flush=True)\n"
    )
    (tmp_path / ".env").write_text(
        "IZZATI_CALLBACK=mycode:handle\nIZZATI_WORKER=jobs:work\n"
        f'IZZATI_WORKER_ARGS=["done: "]\nIZZATI_CALLBACK_PATH={code}\n'
    )
    proc, url = start_web(spawn, {}, cwd=tmp_path)
    assert httpx.post(url, data={"name": "hal"}).json() == {"mine": "hal"}
    proc.wait_output(lambda out: "done: hal" in out)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IZZATI_CALLBACK": "nosuchmodule:f"}, "IZZATI_CALLBACK='nosuchmodule:f': module 'nosuchmodule' not found"),
        (
            {"IZZATI_CALLBACK": "misbehaving:nothing"},
            "IZZATI_CALLBACK='misbehaving:nothing': module 'misbehaving' has no attribute 'nothing'",
        ),
        (
            {"IZZATI_CALLBACK": "misbehaving:NOT_CALLABLE"},
            "IZZATI_CALLBACK='misbehaving:NOT_CALLABLE': 'NOT_CALLABLE' is a int, not callable",
        ),
        ({"IZZATI_CALLBACK": "misbehaving:one_arg"}, "IZZATI_CALLBACK='misbehaving:one_arg': wrong signature"),
        ({"IZZATI_CALLBACK": "nocolon"}, "IZZATI_CALLBACK='nocolon': expected 'module:function'"),
        (
            {"IZZATI_CALLBACK": "broken_import:f"},
            "importing 'broken_import' failed: No module named 'not_a_real_dependency_xyz'",
        ),
        ({"IZZATI_WORKER": "misbehaving:worker_no_q"}, "IZZATI_WORKER='misbehaving:worker_no_q': wrong signature"),
        (
            {"IZZATI_QUEUE_URL": "amqp://localhost"},
            "IZZATI_QUEUE_URL='amqp://localhost': unknown queue URL scheme 'amqp'",
        ),
        ({"IZZATI_JOB_DIR": "/dev/null"}, "IZZATI_JOB_DIR='/dev/null': cannot use the job folder"),
        ({"IZZATI_CALLBACK_ARGS": "[1,"}, "IZZATI_CALLBACK_ARGS: not valid JSON"),
        ({"IZZATI_PORT": "http"}, "IZZATI_PORT: Input should be a valid integer"),
        ({"IZZATI_DEVICES": "gpu0"}, "IZZATI_DEVICES='gpu0': 'gpu0' is not a device: use auto, cpu, or cuda:N"),
        ({"IZZATI_CPU_THREADS": "two"}, "IZZATI_CPU_THREADS: Value error, 'two' is not a thread count: use auto, 0"),
        ({"IZZATI_LOG_LEVEL": "nonsense"}, "IZZATI_LOG_LEVEL: Input should be 'critical', 'error'"),
    ],
)
def test_startup_fails_fast_with_one_clear_line(tmp_path: Path, env: dict[str, str], message: str) -> None:
    env = {"PYTHONPATH": f"{ROOT}:{ROOT / 'tests' / 'callbacks'}", **env}
    result = run_app(env=env, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("izzati: ")
    assert message in lines[0]


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_app(env={"IZZATI_HOST": "127.0.0.1", "IZZATI_PORT": str(port)}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"izzati: IZZATI_HOST='127.0.0.1' IZZATI_PORT={port}: cannot listen there: Address already in use"
    ]


def test_unreachable_redis_fails_after_bounded_retry(tmp_path: Path) -> None:
    port = free_tcp_port()

    def fails_after(timeout: str) -> tuple[float, subprocess.CompletedProcess[str]]:
        started = time.monotonic()
        env = {"IZZATI_QUEUE_URL": f"redis://127.0.0.1:{port}/0", "IZZATI_QUEUE_CONNECT_TIMEOUT": timeout}
        result = run_app(env=env, cwd=tmp_path)
        return time.monotonic() - started, result

    # the same start with a 0.1 s timeout: what starting the process costs on this machine now
    start_up, _ = fails_after("0.1")
    elapsed, result = fails_after("2")
    assert result.returncode == 2
    assert (
        f"izzati: IZZATI_QUEUE_URL='redis://127.0.0.1:{port}/0': Redis at redis://127.0.0.1:{port}/0 "
        "did not answer within 2s" in result.stderr
    )
    assert elapsed >= 2.0
    assert elapsed - start_up < 5.0  # its 2 s, not 2.5 times that


def test_worker_refuses_memory_queue(tmp_path: Path) -> None:
    result = run_app("worker", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert "a separate worker needs a networked queue" in result.stderr


def redis_env(url: str, **extra: str) -> dict[str, str]:
    return {
        "IZZATI_QUEUE_URL": url,
        "IZZATI_CALLBACK": "queue_names:callback",
        "IZZATI_WORKER": "queue_names:greeter",
        "IZZATI_WORKER_ARGS": '["Hello"]',
        "IZZATI_REDELIVERY_TIMEOUT": "2",
        **extra,
    }


@pytest.mark.parametrize("callback", ["queue_names:callback", "queue_names:callback_q_first"])
def test_web_and_worker_as_separate_processes(redis_server: str, spawn: Spawn, callback: str) -> None:
    env = redis_env(redis_server, IZZATI_CALLBACK=callback)
    _, url = start_web(spawn, env)
    worker = spawn([PYTHON, "-m", "app", "worker"], env=env)
    assert httpx.post(url, data={"name": "ivy"}).json() == {"status": "OK"}
    worker.wait_output(lambda out: "Hello, ivy" in out)


def test_three_workers_process_1000_items_exactly_once(redis_server: str, spawn: Spawn) -> None:
    env = redis_env(redis_server)
    _, url = start_web(spawn, env)
    workers = [spawn([PYTHON, "-m", "app", "worker"], env=env) for _ in range(3)]
    names = [f"n{i}" for i in range(1000)]
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda name: client.post(url, data={"name": name}).status_code, names))
    assert replies == [200] * 1000

    def seen() -> Counter[str]:
        counts: Counter[str] = Counter()
        for worker in workers:
            for line in worker.output().splitlines():
                if line.startswith("Hello, "):
                    counts[line.split()[1]] += 1
        return counts

    deadline = time.monotonic() + 60
    while sum(seen().values()) < 1000 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # a duplicate would show up now
    counts = seen()
    assert set(counts) == set(names)
    assert all(count == 1 for count in counts.values())
    busy = [sum(1 for line in w.output().splitlines() if line.startswith("Hello")) for w in workers]
    assert sum(busy) == 1000 and sum(1 for b in busy if b) >= 2, busy


def test_sigkilled_worker_item_is_processed_by_a_new_worker(redis_server: str, spawn: Spawn) -> None:
    env = redis_env(redis_server, IZZATI_WORKER="queue_names:slow_greeter", IZZATI_WORKER_KWARGS='{"hold": 30}')
    _, url = start_web(spawn, env)
    first = spawn([PYTHON, "-m", "app", "worker"], env=env)
    httpx.post(url, data={"name": "jay"})
    first.wait_output(lambda out: "took jay" in out)
    first.kill_group()
    killed_at = time.monotonic()
    env_fast = {**env, "IZZATI_WORKER_KWARGS": '{"hold": 0}'}
    second = spawn([PYTHON, "-m", "app", "worker"], env=env_fast)
    second.wait_output(lambda out: "Hello, jay" in out, timeout=20)
    assert time.monotonic() - killed_at < 12  # within the redelivery timeout (2 s) plus start-up


def test_items_survive_redis_restart_between_put_and_get(redis_proc: RedisServer, spawn: Spawn) -> None:
    env = redis_env(redis_proc.url)
    web, url = start_web(spawn, env)
    for name in ("kim", "lea", "max"):
        assert httpx.post(url, data={"name": name}).json() == {"status": "OK"}
    redis_proc.restart()
    worker = spawn([PYTHON, "-m", "app", "worker"], env=env)
    worker.wait_output(lambda out: all(f"Hello, {n}" in out for n in ("kim", "lea", "max")))
    # the web process reconnects on its own
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if httpx.post(url, data={"name": "ned"}).status_code == 200:
            break
        time.sleep(0.2)
    worker.wait_output(lambda out: "Hello, ned" in out)
    assert web.popen.poll() is None


def test_idle_worker_stops_at_once_on_sigterm(redis_server: str, spawn: Spawn) -> None:
    worker = spawn([PYTHON, "-m", "app", "worker"], env=redis_env(redis_server))
    worker.wait_output(lambda out: "worker queue_names:greeter started" in out)
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.popen.wait(10) == 0
    assert time.monotonic() - started < 3
    assert "worker stopped" in worker.output()


def test_sigterm_lets_the_current_item_finish_and_leaves_the_rest(redis_server: str, spawn: Spawn) -> None:
    env = redis_env(redis_server, IZZATI_WORKER="queue_names:slow_greeter", IZZATI_WORKER_KWARGS='{"hold": 2}')
    _, url = start_web(spawn, env)
    worker = spawn([PYTHON, "-m", "app", "worker"], env=env)
    for name in ("oz", "pam"):
        httpx.post(url, data={"name": name})
    worker.wait_output(lambda out: "took oz" in out)
    worker.signal(signal.SIGTERM)
    assert worker.popen.wait(15) == 0
    out = worker.output()
    assert "Hello, oz" in out and "took pam" not in out
    # the item it did not take is still there for the next worker, and oz is not redone
    after = spawn([PYTHON, "-m", "app", "worker"], env={**env, "IZZATI_WORKER_KWARGS": '{"hold": 0}'})
    after.wait_output(lambda out: "Hello, pam" in out)
    time.sleep(3)  # past the redelivery timeout: oz was acknowledged, so it must not come back
    assert "oz" not in after.output()


def test_sigterm_past_grace_returns_the_item_to_the_queue(redis_server: str, spawn: Spawn) -> None:
    env = redis_env(
        redis_server,
        IZZATI_WORKER="queue_names:slow_greeter",
        IZZATI_WORKER_KWARGS='{"hold": 60}',
        IZZATI_GRACEFUL_TIMEOUT="1",
    )
    _, url = start_web(spawn, env)
    worker = spawn([PYTHON, "-m", "app", "worker"], env=env)
    httpx.post(url, data={"name": "quinn"})
    worker.wait_output(lambda out: "took quinn" in out)
    worker.signal(signal.SIGTERM)
    assert worker.popen.wait(10) == 0
    assert "Hello, quinn" not in worker.output()
    after = spawn([PYTHON, "-m", "app", "worker"], env={**env, "IZZATI_WORKER_KWARGS": '{"hold": 0}'})
    after.wait_output(lambda out: "Hello, quinn" in out, timeout=15)


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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_web_process_stops_its_children(spawn: Spawn, sig: int) -> None:
    proc, url = start_web(spawn, {"IZZATI_CALLBACK": "queue_names:callback"})
    children = _children(proc.popen.pid)
    assert len(children) >= 2  # the memory:// worker and the job runner
    assert httpx.post(url, data={"name": "rex"}).status_code == 200
    proc.signal(sig)
    assert proc.popen.wait(15) == 128 + sig
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in children)
    assert "Traceback" not in proc.output()


def test_workers_setting_runs_several_server_processes(spawn: Spawn) -> None:
    proc, url = start_web(spawn, {"IZZATI_WORKERS": "2", "IZZATI_CALLBACK": "whoami:handle", "IZZATI_JOBS": "false"})
    pids: set[int] = set()
    for _ in range(200):  # a new connection each time: the kernel spreads them over both sockets
        pids.add(httpx.post(url).json()["pid"])
        if len(pids) == 2:
            break
    assert len(pids) == 2
    assert proc.popen.pid not in pids
    proc.signal(signal.SIGTERM)
    assert proc.popen.wait(15) is not None
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)


def test_slow_or_silent_clients_are_cut_off(spawn: Spawn) -> None:
    proc, url = start_web(spawn, {"IZZATI_READ_TIMEOUT": "1", "IZZATI_JOBS": "false"})
    port = int(url.rstrip("/").rsplit(":", 1)[1])

    def reply_after(payload: bytes, pause: float = 0.0) -> tuple[bytes, float]:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            for byte in payload:  # slowloris: a byte at a time
                try:
                    sock.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    break  # the server hung up on us: read what it said
                time.sleep(pause)
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        return data, time.monotonic() - started

    # cut off after the 1 s read timeout: not sooner, and not more than twice as late
    silent, took = reply_after(b"")
    assert silent.startswith(b"HTTP/1.1 408") and b'"error":"request_timeout"' in silent
    assert 0.95 <= took < 2.0
    slow, took = reply_after(b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40, pause=0.05)
    assert slow.startswith(b"HTTP/1.1 408")
    assert 0.95 <= took < 2.0  # sending it all would take 3.4 s
    # an idle keep-alive connection between two requests is not cut by the header bound
    with httpx.Client() as client:
        assert client.post(url, data={"a": "1"}).status_code == 200
        time.sleep(1.5)
        assert client.post(url, data={"a": "2"}).status_code == 200
    assert proc.popen.poll() is None


def test_worker_and_web_ride_out_a_redis_outage(redis_proc: RedisServer, spawn: Spawn) -> None:
    # a job TTL of 10 s sweeps the jobs every second, and a connect timeout of 1 s gives up on Redis
    # within the outage: sweeps fail inside it, and each says so in one line (a traceback per sweep
    # would bury the log)
    env = redis_env(redis_proc.url, IZZATI_JOB_TTL="10", IZZATI_QUEUE_CONNECT_TIMEOUT="1")
    web, url = start_web(spawn, env)
    worker = spawn([PYTHON, "-m", "app", "worker"], env=env)
    assert httpx.post(url, data={"name": "before"}).status_code == 200
    worker.wait_output(lambda out: "Hello, before" in out)
    redis_proc.stop()
    time.sleep(3)  # the outage: longer than any single blocking read of the worker
    assert worker.popen.poll() is None
    redis_proc.start()
    deadline = time.monotonic() + 20
    while httpx.post(url, data={"name": "after"}).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    worker.wait_output(lambda out: "Hello, after" in out)
    assert worker.popen.poll() is None and web.popen.poll() is None
    assert "Traceback" not in worker.output()
    assert "sweeping jobs failed" in worker.output()
    job = httpx.post(url + "jobs", data={"name": "job-after"}).json()["id"]
    deadline = time.monotonic() + 20
    while httpx.get(f"{url}jobs/{job}").json()["status"] != "done" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert httpx.get(f"{url}jobs/{job}").json()["status"] == "done"


def test_endless_headers_are_cut_off_without_buffering_them(spawn: Spawn) -> None:
    proc, url = start_web(spawn, {"IZZATI_JOBS": "false"})
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    rss_before = _rss(proc.popen.pid)
    line = b"X-A: " + b"a" * 1000 + b"\r\n"
    reply = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(100_000):  # 100 MB of headers, if the server kept reading
                sock.sendall(line * 64)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := sock.recv(4096):
                reply += chunk
        except ConnectionResetError:
            pass
    assert reply.startswith(b"HTTP/1.1 431"), reply[:100]
    assert _rss(proc.popen.pid) - rss_before < 20 * 1024
    # a big body right behind small headers is not mistaken for big headers
    assert httpx.post(url, data={"a": "x" * 500_000}).status_code == 200


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_ready_reports_a_dead_memory_worker_and_the_supervisor_restarts_it(spawn: Spawn) -> None:
    proc, url = start_web(spawn, {"IZZATI_CALLBACK": "whoami:handle"})
    assert httpx.get(url + "ready").status_code == 200
    children = _children(proc.popen.pid)
    assert len(children) == 2  # one server process (it runs the jobs too) and the memory:// worker
    server = httpx.post(url).json()["pid"]
    [worker] = children - {server}
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while httpx.get(url + "ready").status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    r = httpx.get(url + "ready")
    assert r.status_code == 503
    assert r.json()["problems"] == [f"izzati-worker (pid {worker}) is not running"]
    assert httpx.get(url + "health").status_code == 200  # liveness is not readiness
    # supervised: started again, and the service is ready again
    deadline = time.monotonic() + 15
    while httpx.get(url + "ready").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert httpx.get(url + "ready").status_code == 200
    restarted = _children(proc.popen.pid)
    assert len(restarted) == 2 and server in restarted and worker not in restarted
    assert proc.output().count("exited with -9: starting it again") == 1


def test_a_killed_server_process_is_started_again_on_the_same_port(spawn: Spawn) -> None:
    proc, url = start_web(spawn, {"IZZATI_CALLBACK": "whoami:handle", "IZZATI_JOBS": "false"})
    server = httpx.post(url).json()["pid"]
    os.kill(server, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while True:
        try:
            again = httpx.post(url).json()["pid"]
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert again != server and again in _children(proc.popen.pid)
    assert "izzati-server-0 (pid" in proc.output() and proc.popen.poll() is None


def test_ctrl_c_stops_the_service_quietly(spawn: Spawn) -> None:
    # Ctrl+C in a terminal signals the whole process group: the worker child as well as the web
    # process, which then stops the child itself. One stop, no warning about a second signal,
    # and the item the worker holds is finished.
    env = {
        "IZZATI_CALLBACK": "queue_names:callback",
        "IZZATI_WORKER": "queue_names:slow_greeter",
        "IZZATI_WORKER_ARGS": '["Hello", 2.0]',
    }
    proc, url = start_web(spawn, env)
    assert httpx.post(url, data={"name": "rex"}).status_code == 200
    proc.wait_output(lambda out: "took rex" in out)
    os.killpg(proc.popen.pid, signal.SIGINT)
    assert proc.popen.wait(15) == 128 + signal.SIGINT
    output = proc.output()
    assert "Hello, rex" in output
    assert "second signal" not in output
    assert "WARNING" not in output and "Traceback" not in output, output


def _wait_job(url: str, job_id: str, states: tuple[str, ...], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            status = httpx.get(f"{url}jobs/{job_id}").json()
        except httpx.TransportError:  # a server process killed by its job: the supervisor starts it again
            time.sleep(0.1)
            continue
        if status["status"] in states:
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not in {states} after {timeout} s: {status}")


def test_a_memory_job_that_kills_its_server_process_fails_and_jobs_go_on(spawn: Spawn) -> None:
    env = {"IZZATI_CALLBACK": "jobwork:handle", "IZZATI_JOB_MAX_ATTEMPTS": "2", "IZZATI_WORKERS": "2"}
    proc, url = start_web(spawn, env)
    poison = httpx.post(url + "jobs", data={"mode": "die"}).json()["id"]
    status = _wait_job(url, poison, ("failed",))
    assert status["error"]["error"] == "worker_lost" and status["attempt"] == 2
    after = httpx.post(url + "jobs", data={"mode": "echo", "n": "1"}).json()["id"]
    assert _wait_job(url, after, ("done",))["status"] == "done"
    assert httpx.get(url + "ready").status_code == 200
    deaths = [line for line in proc.output().splitlines() if "exited with" in line and "izzati-server-" in line]
    assert len(deaths) == 2  # each death logged, with the restart


def test_sigkill_of_the_web_process_leaves_no_children_and_no_job_files(spawn: Spawn, tmp_path: Path) -> None:
    env = {"IZZATI_CALLBACK": "jobwork:handle", "TMPDIR": str(tmp_path)}
    proc, url = start_web(spawn, env)
    children = _children(proc.popen.pid)
    job = httpx.post(url + "jobs", data={"mode": "echo"}, files={"file": ("in.txt", b"secret upload")}).json()["id"]
    _wait_job(url, job, ("done",))
    [run_folder] = tmp_path.glob("izzati-run-*")
    os.kill(proc.popen.pid, signal.SIGKILL)
    proc.popen.wait(10)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in children)  # no orphans
    assert run_folder.exists()  # nothing ran at exit: the next start removes it
    start_web(spawn, env)
    assert not run_folder.exists()
    assert len(list(tmp_path.glob("izzati-run-*"))) == 1  # the new run's own
