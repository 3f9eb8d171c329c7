"""Latencies of the service's reliability paths, with real processes and a real Redis.

    python -m bench latency [--calls 50]

Starts its own redis-server, `python -m app` and `python -m app worker` on 127.0.0.1 and prints:
- a synchronous POST / round trip vs a job (submit -> running, submit -> done, done -> result),
  medians over --calls calls; the difference is the per-job overhead;
- a worker SIGKILLed while holding a queue item: seconds until a new worker prints it
  (IZZATI_REDELIVERY_TIMEOUT=2);
- Redis stopped, then started again: what a POST / gets meanwhile (503 after the queue's connect
  timeout), then seconds until a POST / works again and a new item reaches the worker, with
  neither web nor worker restarted.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.runner import free_port

ROOT = Path(__file__).resolve().parent.parent
CALLBACKS = ROOT / "tests" / "callbacks"


def start_redis(directory: str, port: int = 0) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server with append-only persistence on a loopback port (a free one by default)."""
    port = port or free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory]
    proc = subprocess.Popen([*args, "--appendonly", "yes"], stdout=subprocess.DEVNULL)
    wait_until(lambda: _pong(port), timeout=10)
    return proc, f"redis://127.0.0.1:{port}/0"


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("IZZATI_")}
    full.update(env, PYTHONPATH=f"{ROOT}{os.pathsep}{CALLBACKS}", PYTHONUNBUFFERED="1")
    return subprocess.Popen(args, env=full, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def wait_until(predicate: Any, timeout: float = 30.0, step: float = 0.005) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise SystemExit("timed out")
        time.sleep(step)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench latency", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="izzati-latency-"))
    redis_proc, redis_url = start_redis(str(work))
    port = free_port()
    env = {
        "IZZATI_QUEUE_URL": redis_url,
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_CALLBACK": "queue_names:callback",
        "IZZATI_WORKER": "queue_names:greeter",
        "IZZATI_WORKER_ARGS": '["Hello"]',
        "IZZATI_REDELIVERY_TIMEOUT": "2",
        "IZZATI_JOB_DIR": str(work / "jobs"),
        "IZZATI_ACCESS_LOG": "false",
    }
    url = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(spawn([sys.executable, "-m", "app"], env, work / "web.log"))
        wait_until(lambda: _ok(url + "/health"))
        worker_log = work / "worker-1.log"
        procs.append(spawn([sys.executable, "-m", "app", "worker"], env, worker_log))
        wait_until(lambda: "started on" in worker_log.read_text())
        client = httpx.Client(base_url=url, timeout=30)

        sync, to_running, to_done, fetch = [], [], [], []
        for i in range(args.calls):
            t0 = time.perf_counter()
            assert client.post("/", data={"name": f"s{i}"}).status_code == 200
            sync.append(time.perf_counter() - t0)
        for i in range(args.calls):
            t0 = time.perf_counter()
            job = client.post("/jobs", data={"name": f"j{i}"}).json()["id"]
            running = done = None
            while done is None:
                status = client.get(f"/jobs/{job}").json()["status"]
                now = time.perf_counter()
                if status in ("running", "done") and running is None:
                    running = now
                if status == "done":
                    done = now
                else:
                    time.sleep(0.001)
            assert running is not None
            client.get(f"/jobs/{job}/result").raise_for_status()
            fetch.append(time.perf_counter() - done)
            to_running.append(running - t0)
            to_done.append(done - t0)

        def ms(xs: list[float]) -> float:
            return statistics.median(xs) * 1000

        print(f"sync POST / round trip           median {ms(sync):7.2f} ms  ({args.calls} calls)")
        print(f"job submit -> running (polled)   median {ms(to_running):7.2f} ms")
        print(f"job submit -> done (polled)      median {ms(to_done):7.2f} ms")
        print(f"job result fetch                 median {ms(fetch):7.2f} ms")
        print(f"overhead per job vs sync call    median {ms(to_done) + ms(fetch) - ms(sync):7.2f} ms")

        # SIGKILL a worker holding an item: a new worker gets it
        slow_env = {**env, "IZZATI_WORKER": "queue_names:slow_greeter", "IZZATI_WORKER_KWARGS": '{"hold": 60}'}
        procs[1].send_signal(signal.SIGTERM)
        procs[1].wait(30)
        slow_log = work / "worker-slow.log"
        slow = spawn([sys.executable, "-m", "app", "worker"], slow_env, slow_log)
        procs.append(slow)
        wait_until(lambda: "started on" in slow_log.read_text())
        client.post("/", data={"name": "victim"})
        wait_until(lambda: "took victim" in slow_log.read_text())
        slow.kill()
        killed = time.monotonic()
        fresh_log = work / "worker-2.log"
        procs.append(spawn([sys.executable, "-m", "app", "worker"], env, fresh_log))
        wait_until(lambda: "Hello, victim" in fresh_log.read_text(), timeout=60)
        print(
            f"SIGKILLed worker's item redelivered after {time.monotonic() - killed:5.2f} s "
            "(redelivery timeout 2 s, includes the new worker's start-up)"
        )

        # Redis restart: web and worker recover on their own
        redis_proc.terminate()
        redis_proc.wait(10)
        stopped = time.monotonic()
        t0 = time.monotonic()
        during = client.post("/", data={"name": "during-outage"})
        print(
            f"POST / while Redis is down: {during.status_code} {during.json().get('error')} "
            f"after {time.monotonic() - t0:4.2f} s"
        )
        time.sleep(max(0.0, 2 - (time.monotonic() - stopped)))
        redis_proc2, _ = start_redis(str(work), port=int(redis_url.rsplit(":", 1)[1].split("/")[0]))
        restarted = time.monotonic()
        wait_until(lambda: _post(client, "after-restart"), timeout=60, step=0.05)
        web_back = time.monotonic() - restarted
        wait_until(lambda: "Hello, after-restart" in fresh_log.read_text(), timeout=60)
        print(
            f"Redis down {restarted - stopped:4.2f} s; after it came back: POST / ok in {web_back:4.2f} s, "
            f"the item reached the worker in {time.monotonic() - restarted:4.2f} s"
        )
        redis_proc = redis_proc2
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis_proc.terminate()
        redis_proc.wait(10)
    return 0


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _post(client: httpx.Client, name: str) -> bool:
    try:
        return client.post("/", data={"name": name}).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":  # python -m bench.service_latency: point to the one way
    sys.exit("run it as: python -m bench latency")
