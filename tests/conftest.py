"""Fixtures: real uvicorn servers on free loopback ports, child processes, temp dirs, Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

pytest_plugins = ["tests.fixtures_redis"]

ROOT = Path(__file__).resolve().parent.parent
CALLBACKS = Path(__file__).resolve().parent / "callbacks"


def wait_for_http(url: str, timeout: float = 15.0, proc: subprocess.Popen[Any] | None = None) -> None:
    """Poll `url` until it answers 200, failing early if `proc` exits."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {timeout} s: {last}")


class ThreadServer:
    """A uvicorn server for an ASGI app, in a thread of this process, on a free port."""

    def __init__(self, app: Any, **options: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Factory: `serve(app)` runs the app under a real uvicorn and returns its base URL."""
    servers: list[ThreadServer] = []

    def start(app: Any, **options: Any) -> str:
        server = ThreadServer(app, **options).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def client_for(serve: Callable[..., str]) -> Iterator[Callable[..., httpx.Client]]:
    """Factory: `client_for(app)` serves the app and returns an httpx client bound to it."""
    clients: list[httpx.Client] = []

    def make(app: Any, **options: Any) -> httpx.Client:
        client = httpx.Client(base_url=serve(app, **options), timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


class Proc:
    """A child process with captured output, stopped (TERM, then KILL) at teardown."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        self.handle = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=self.handle, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace")

    def wait_output(self, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
        """Poll the output until `predicate(output)` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.output()
            if predicate(text):
                return text
            time.sleep(0.05)
        raise AssertionError(f"condition not met within {timeout} s; output:\n{self.output()}")

    def signal(self, sig: int) -> None:
        """Send a signal to the process."""
        self.popen.send_signal(sig)

    def kill_group(self) -> None:
        """SIGKILL the process and all its children."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(10)

    def stop(self) -> None:
        """Stop the process and its children: SIGTERM, then SIGKILL after 10 s."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.popen.poll() is None:
            self.popen.wait(10)
        self.handle.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Factory: `spawn([args], env={...})` starts a real child process with a clean env."""
    procs: list[Proc] = []

    def start(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Proc:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("IZZATI_")}
        full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(CALLBACKS)])
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env or {})
        log = tmp_path / f"proc-{len(procs)}.log"
        proc = Proc(args, full_env, cwd or tmp_path, log)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()


def free_tcp_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


PYTHON = sys.executable
