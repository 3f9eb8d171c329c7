"""Server processes of one port that share its connections evenly.

The processes share one listening socket and each writes its count of open connections in shared
memory. A process with `SLACK` + 1 or more open connections than another leaves a new connection
to the others. A burst of connections is split evenly (within 2), and a process whose event loop is
stuck takes none, so the next ones go to a free one.

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
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import uvicorn

from ..supervisor import State

__all__ = ["Loads", "BalancedServer"]

logger = logging.getLogger("izzati")

GONE = -1

SLACK = 1
"""How many more open connections than another process a process may have and still take the next
connection at once. With 0 the split of a burst was exact, but with connections opened and closed
at a high rate (clients without keep-alive) a free process kept leaving them to a busy one: 1,450
requests/s against 3,800 with SO_REUSEPORT (two processes, `wrk -c32 -H "Connection: close"`);
with 1 a burst of 50 comes out 25/25 or 26/24, and `python -m bench --only multicore --against`
measured 3,597-3,929 against SO_REUSEPORT's 2,857-3,170."""

RECHECK = 0.001
"""Seconds between two looks at the counts while another process should take the waiting connection."""

WAIT = 0.005
"""The longest a waiting connection is left to another process."""

ACCEPTS_PER_TURN = 100
"""The most connections taken in one turn of the event loop (asyncio's own default): under a flood
of new connections, the ones already taken are served in between."""


@dataclass(frozen=True)
class Loads:
    """The server processes of one socket, in shared memory made before they fork: the open
    connections of each (`GONE` while it does not accept), and its state as the supervisor keeps
    it (`izzati.supervisor.State`; pass each to its `Child`): a process that died leaves its last
    count behind, and the supervisor marks it within 0.2 s, long before it starts again."""

    open: Any
    states: list[Synchronized[int]]

    @classmethod
    def make(cls, processes: int) -> Loads:
        from .._process import mp_context

        context = mp_context()
        states = [context.Value("i", State.STARTING, lock=False) for _ in range(processes)]
        return cls(context.Array("i", [GONE] * processes, lock=False), states)

    def excess(self, index: int, mine: int) -> int:
        """How many more open connections process `index` has (`mine`) than the least loaded other
        that accepts and runs; 0 when none does."""
        others = (
            load
            for other, load in enumerate(self.open)
            if other != index and load >= 0 and self.states[other].value == State.READY
        )
        return max(0, mine - min(others, default=mine))


class BalancedServer(uvicorn.Server):
    """A uvicorn server that takes its connections from `sock`, shared with the other processes
    of `counts` (this one is slot `index`), when its turn comes (see the module)."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, counts: Loads, index: int) -> None:
        super().__init__(config)
        self.sock, self.counts, self.index = sock, counts, index
        self.accepting = False
        self.pending = 0  # accepted, the protocol not yet connected
        self.connected = 0
        self.waited = 0  # connections left to another process that were taken here after WAIT
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

    def _readable(self) -> None:
        loop = self._loop
        for _ in range(ACCEPTS_PER_TURN):
            if not self.accepting:
                return
            if self.counts.excess(self.index, self.pending + self.connected) > SLACK:
                now = loop.time()
                if self._passed_since is None:
                    self._passed_since = now
                if now - self._passed_since < WAIT:  # leave it to the others a while
                    self._pause(RECHECK)
                    return
                self.waited += 1
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:  # out of file descriptors or memory: asyncio's own policy
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    raise
                logger.error("accepting a connection failed (%s): trying again in 1 s", exc)
                self._pause(1.0)
                return
            self._passed_since = None
            conn.setblocking(False)
            self.pending += 1
            self._publish()
            task = loop.create_task(self._connect(conn))
            self._connecting.add(task)  # the loop keeps only a weak reference to a task
            task.add_done_callback(self._connecting.discard)

    def _pause(self, seconds: float) -> None:
        self._loop.remove_reader(self.sock.fileno())
        self._resume = self._loop.call_later(seconds, self._resumed)

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
