"""Server processes of one port that share its connections evenly.

The processes share one listening socket. Each takes a new connection only while it has no more
open connections than the others, and on a tie only if it has taken no more connections so far
(each process writes both counts in shared memory). A burst of connections is split evenly, and a
process whose event loop is busy leaves the next ones to a free one.

- SO_REUSEPORT instead hashes each connection to a process: 50 connections arriving at once were split
  28 / 22 in one run, and the 28-side decided how long the burst took.
- One shared socket accepted as usual lets whichever process wakes first take a run of them.

A process passed over keeps the connection waiting at most `WAIT` seconds: past that it takes the
connection itself (the other process may be stuck, or dead and not yet restarted).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import select
import socket
from dataclasses import dataclass
from typing import Any

import uvicorn

__all__ = ["Loads", "BalancedServer"]

logger = logging.getLogger("izzati")

GONE = -1

RECHECK = 0.001
"""Seconds between two looks at the counts while another process should take the waiting connection."""

WAIT = 0.005
"""The longest a waiting connection is left to another process."""


@dataclass(frozen=True)
class Loads:
    """The counts of the server processes of one socket, in shared memory (made before they fork):
    by process, its open connections (`GONE` while it does not accept) and the ones it has taken."""

    open: Any
    taken: Any

    @classmethod
    def make(cls, processes: int) -> Loads:
        from .._process import mp_context

        context = mp_context()
        return cls(context.Array("i", [GONE] * processes, lock=False), context.Array("q", processes, lock=False))

    def turn(self, index: int, mine: int) -> bool:
        """Whether process `index`, with `mine` open connections, should take the next one."""
        taken = self.taken[index]
        for other, load in enumerate(self.open):
            if other != index and load >= 0 and (mine > load or (mine == load and taken > self.taken[other])):
                return False
        return True


class BalancedServer(uvicorn.Server):
    """A uvicorn server that takes its connections from `sock`, shared with the other processes
    of `counts` (this one is slot `index`), when its turn comes (see the module)."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, counts: Loads, index: int) -> None:
        super().__init__(config)
        self.sock, self.counts, self.index = sock, counts, index
        self.accepting = False
        self.pending = 0  # accepted, the protocol not yet connected
        self.connected = 0
        self._resume: asyncio.TimerHandle | None = None
        self._connecting: set[asyncio.Task[None]] = set()
        self._passed_since: float | None = None  # when a waiting connection was first left to another

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the lifespan, no listener of uvicorn's own
        if not self.started:
            return
        self._loop = asyncio.get_running_loop()
        self._factory = self._protocol_factory()
        self.sock.listen(self.config.backlog)
        self.sock.setblocking(False)
        self.accepting = True
        self._publish()
        self._loop.add_reader(self.sock.fileno(), self._readable)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._stop_accepting()
        await super().shutdown(sockets=sockets)

    def _stop_accepting(self) -> None:
        if self.accepting:
            self.accepting = False
            self._loop.remove_reader(self.sock.fileno())
            if self._resume is not None:
                self._resume.cancel()
            self.counts.open[self.index] = GONE

    def _protocol_factory(self) -> Any:
        config, state, app_state, server = self.config, self.server_state, self.lifespan.state, self

        class Counted(config.http_protocol_class):  # type: ignore[misc,name-defined]
            _counted = False

            def connection_made(self, transport: Any) -> None:
                self._counted = True
                server.connected += 1
                super().connection_made(transport)

            def connection_lost(self, exc: Exception | None) -> None:
                super().connection_lost(exc)
                if self._counted:
                    self._counted = False
                    server.connected -= 1
                    server._publish()

        return lambda: Counted(config=config, server_state=state, app_state=app_state)

    def _publish(self) -> None:
        if self.accepting:
            self.counts.open[self.index] = self.pending + self.connected

    def _my_turn(self) -> bool:
        return self.counts.turn(self.index, self.pending + self.connected)

    def _readable(self) -> None:
        loop = self._loop
        now = loop.time()
        while self.accepting:
            if not self._my_turn():
                if self._passed_since is None:
                    self._passed_since = now
                if now - self._passed_since < WAIT:
                    loop.remove_reader(self.sock.fileno())
                    self._resume = loop.call_later(RECHECK, self._resumed)
                    return
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:  # out of file descriptors or memory: asyncio's own policy
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    raise
                logger.error("accepting a connection failed (%s): trying again in 1 s", exc)
                loop.remove_reader(self.sock.fileno())
                self._resume = loop.call_later(1.0, self._resumed)
                return
            self._passed_since = None
            conn.setblocking(False)
            self.pending += 1
            self.counts.taken[self.index] += 1
            self._publish()
            task = loop.create_task(self._connect(conn))
            self._connecting.add(task)  # the loop keeps only a weak reference to a task
            task.add_done_callback(self._connecting.discard)

    def _resumed(self) -> None:
        self._resume = None
        if self.accepting:
            if not select.select([self.sock], [], [], 0)[0]:
                self._passed_since = None  # another process took the waiting connection
            self._loop.add_reader(self.sock.fileno(), self._readable)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn, ssl=self.config.ssl)
        except Exception as exc:  # the client left, or its TLS handshake failed
            logger.debug("a connection ended before it was served: %r", exc)
            with contextlib.suppress(OSError):
                conn.close()
        finally:
            self.pending -= 1
            self._publish()
