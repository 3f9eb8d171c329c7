"""A real ``redis-server`` child process on a free loopback port."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from pathlib import Path

from tests.support.net import free_tcp_port
from tests.support.processes import stop_server
from tests.support.tls import Certificates


class RedisServer:
    """A ``redis-server`` child process on 127.0.0.1 with its data in ``directory``; with `tls`,
    it speaks only TLS (`rediss://`), and `users` are ACL lines (`"name on >password ~* &* +@all"`)."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        *,
        appendonly: bool = True,
        tls: Certificates | None = None,
        users: tuple[str, ...] = (),
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.appendonly = appendonly
        self.tls = tls
        self.users = users
        self.port = free_tcp_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL, database 0 (with TLS: `rediss://`, the CA in `ssl_ca_certs`)."""
        if self.tls is not None:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls.ca}"
        return f"redis://127.0.0.1:{self.port}/0"

    def _listen(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        return [
            *("--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"),
            *("--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)),
            *("--tls-ca-cert-file", str(self.tls.ca)),
        ]

    def start(self, timeout: float = 10.0) -> None:
        """Start the server on ``self.port`` and wait until it answers PING."""
        args = [
            self.binary,
            *self._listen(),
            *("--bind", "127.0.0.1", "--dir", str(self.directory)),
            *("--save", "", "--appendonly", "yes" if self.appendonly else "no"),
            *("--appendfsync", "always", "--protected-mode", "no", "--loglevel", "warning"),
            *("--logfile", str(self.directory / "redis.log")),
            *(arg for user in self.users for arg in ("--user", *user.split())),
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
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as plain:
                s = plain
                if self.tls is not None:
                    s = ssl.create_default_context(cafile=str(self.tls.ca)).wrap_socket(
                        plain, server_hostname="127.0.0.1"
                    )
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith((b"+PONG", b"-NOAUTH"))  # -NOAUTH: it answers, to users only
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, which flushes the append-only file; SIGKILL if it hangs)."""
        if self.proc is None:
            return
        stop_server(self.proc, timeout)
        self.proc = None

    def restart(self) -> None:
        """Stop the server and start it again on the same port with the same data directory."""
        self.stop()
        self.start()
