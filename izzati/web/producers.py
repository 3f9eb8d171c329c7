"""Running a generator ahead of the sender of a streamed reply, within a budget: a plain generator
in one pool thread, an async one as its own task. The sender takes whatever is ready at once."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from typing import Any

__all__ = ["END", "LARGE", "Producer", "AsyncProducer", "weight"]

END = object()
"""What a producer gives after the generator's last item."""

LARGE = 64 * 1024  # an encoded item this big goes in a message of its own
AHEAD = 32  # how far a generator may run ahead of what was sent, in `weight` units


def weight(item: Any) -> int:
    """What an item counts against `AHEAD`: 1, plus 1 for every 64 KiB of a bytes item (so 32
    small items, or 2 MiB of bytes, are ever waiting to be sent)."""
    return 1 + len(item) // LARGE if isinstance(item, (bytes, bytearray, memoryview)) else 1


class Producer:
    """Runs a plain generator in one pool thread, ahead of the event loop by at most `ahead`
    weight (see `_weight`), so the loop takes whatever is ready at once instead of one thread hop
    per item."""

    def __init__(self, items: Any, ahead: int = AHEAD) -> None:
        self.items = items
        self.ready: collections.deque[Any] = collections.deque()
        self.ahead = ahead
        self.used = 0
        self.room = threading.Condition()
        self.loop = asyncio.get_running_loop()
        self.waiter: asyncio.Future[None] | None = None
        self.lock = threading.Lock()
        self.stopping = False
        self.error: BaseException | None = None

    def run(self) -> None:
        """The thread's side: make items until the end, an error, or `stop()`."""
        try:
            while not self.stopping:
                with self.room:  # backpressure: a slow reader holds the generator back
                    self.room.wait_for(lambda: self.used < self.ahead or self.stopping)
                if self.stopping:
                    break
                item = next(self.items, END)
                with self.room:
                    self.used += weight(item)
                self._push(item)
                if item is END:
                    return
        except BaseException as exc:  # handed to the loop, which raises it
            self.error = exc
            self._push(END)
        finally:
            self.items.close()  # in this thread: a generator is closed where it runs

    def _push(self, item: Any) -> None:
        with self.lock:
            self.ready.append(item)
            waiter, self.waiter = self.waiter, None
        if waiter is not None:  # the loop waits for an item: wake it (once, not per item)
            self.loop.call_soon_threadsafe(_wake, waiter)

    async def take(self) -> list[Any]:
        """Every item ready now, waiting for one when there is none."""
        with self.lock:
            if not self.ready:
                self.waiter = self.loop.create_future()
        if self.waiter is not None:
            await self.waiter
        with self.lock:
            batch = list(self.ready)
            self.ready.clear()
        if self.error is not None and batch and batch[-1] is END:
            raise self.error
        return batch

    def sent(self, weight: int) -> None:
        """Items of this `weight` were sent: the generator may go on."""
        with self.room:
            self.used -= weight
            self.room.notify()

    def stop(self) -> None:
        """Stop making items (the client went away)."""
        with self.room:
            self.stopping = True
            self.room.notify()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class AsyncProducer:
    """Runs an async generator as its own task, ahead of the sender by at most `ahead` items, so
    the sender takes whatever is ready at once (items made between two of its sends go together)."""

    def __init__(self, items: Any, ahead: int = AHEAD) -> None:
        self.items = items
        self.ahead = ahead
        self.used = 0
        self.ready: collections.deque[Any] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.room: asyncio.Future[None] | None = None
        self.error: BaseException | None = None
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            async for item in self.items:
                self.used += weight(item)
                self._push(item)
                while self.used >= self.ahead:  # backpressure: wait for the sender
                    self.room = asyncio.get_running_loop().create_future()
                    await self.room
        except Exception as exc:  # handed to the sender, which raises it
            self.error = exc
        self._push(END)

    def _push(self, item: Any) -> None:
        self.ready.append(item)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def take(self) -> list[Any]:
        """Every item ready now, waiting for one when there is none."""
        if not self.ready:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        batch = list(self.ready)
        self.ready.clear()
        if self.error is not None and batch[-1] is END:
            raise self.error
        return batch

    def sent(self, weight: int) -> None:
        """Items of this `weight` were sent: the generator may go on."""
        self.used -= weight
        if self.room is not None and not self.room.done():
            self.room.set_result(None)

    async def stop(self) -> None:
        """Stop the generator's task (the client went away, or the stream ended)."""
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task
