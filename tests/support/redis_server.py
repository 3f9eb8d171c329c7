"""A real ``redis-server`` child process on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.support.net import free_tcp_port


class RedisServer:
    """A ``redis-server`` child process on 127.0.0.1 with its data in ``directory``."""

    def __init__(self, binary: str, directory: Path, *, appendonly: bool = True) -> None:
        self.binary = binary
        self.directory = directory
        self.appendonly = appendonly
        self.port = free_tcp_port()
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
