"""Pytest plugin: a real ``redis-server`` on a free loopback port, started and stopped per test.

Load it from ``conftest.py`` with ``pytest_plugins = ["tests.fixtures_redis"]``.

- ``redis_proc``: a :class:`RedisServer` (``.url``, ``.port``, ``.stop()``, ``.start()``,
  ``.restart()``) with append-only persistence in a temporary directory, so a restart keeps data.
- ``redis_server``: just its URL, ``redis://127.0.0.1:PORT/0``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["RedisServer", "free_port", "redis_proc", "redis_server"]


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """A ``redis-server`` child process on 127.0.0.1 with its data in ``directory``."""

    def __init__(self, binary: str, directory: Path, *, appendonly: bool = True) -> None:
        self.binary = binary
        self.directory = directory
        self.appendonly = appendonly
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL, database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server on ``self.port`` and wait until it answers PING."""
        args = [
            self.binary,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)),
            *("--save", "", "--appendonly", "yes" if self.appendonly else "no"),
            *("--appendfsync", "always", "--protected-mode", "no", "--loglevel", "warning"),
            *("--logfile", str(self.directory / "redis.log")),
        ]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n{log}")
            time.sleep(0.01)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, which flushes the append-only file; SIGKILL if it hangs)."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)
        self.proc = None

    def restart(self) -> None:
        """Stop the server and start it again on the same port with the same data directory."""
        self.stop()
        self.start()


@pytest.fixture
def redis_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A running ``redis-server`` (append-only persistence on) that the test can restart."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: apt-get install -y redis-server")
    directory = tmp_path_factory.mktemp("redis")
    for attempt in range(3):  # the free port can be taken between probing and binding
        server = RedisServer(binary, directory)
        try:
            server.start()
            break
        except RuntimeError:
            if attempt == 2:
                raise
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def redis_server(redis_proc: RedisServer) -> str:
    """The URL of a running ``redis-server``: ``redis://127.0.0.1:PORT/0``."""
    return redis_proc.url
