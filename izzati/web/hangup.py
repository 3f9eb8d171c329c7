"""Noticing a client that hangs up while its callback runs, so nothing is computed for nobody."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from starlette.types import Receive

from ..jobs import Hangup
from .inputs import ClientDisconnected

T = TypeVar("T")

__all__ = ["HangupWatch"]

# a callback that returns sooner is never watched: listening costs a task, and most calls are quick
WATCH_AFTER = 0.02


@dataclass
class _Call:
    receive: Receive
    hangup: Hangup
    waiting: asyncio.Task[object] | None
    since: float
    listener: asyncio.Task[None] | None = None


class HangupWatch:
    """The calls of one event loop that wait for a callback. Those still waiting after 20 ms get
    a listener for `http.disconnect`: on a hang-up it sets the request's `Hangup` (what
    `izzati.cancelled()` reads) and cancels the waiting task (an `async def` callback is cancelled;
    a plain one's thread is no longer waited for, and is free as soon as it checks).

    One timer for all calls, running only while some wait: a quick call costs a dict entry.
    """

    def __init__(self) -> None:
        self._calls: dict[int, _Call] = {}
        self._timer: asyncio.TimerHandle | None = None

    def begin(self, receive: Receive, hangup: Hangup) -> None:
        """The current task starts waiting for its callback (the request's body is read)."""
        loop = asyncio.get_running_loop()
        self._calls[id(hangup)] = _Call(receive, hangup, asyncio.current_task(), loop.time())
        if self._timer is None:
            self._timer = loop.call_later(WATCH_AFTER, self._sweep)

    def end(self, hangup: Hangup) -> None:
        """The callback returned (or raised): stop listening for this call."""
        call = self._calls.pop(id(hangup), None)
        if call is not None and call.listener is not None:
            call.listener.cancel()

    async def wait(self, receive: Receive, awaitable: Awaitable[T]) -> T:
        """Await `awaitable` (not a callback: nothing to cancel but the wait), unless the client
        hangs up first: then raise `ClientDisconnected`."""
        hangup = Hangup()
        self.begin(receive, hangup)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if hangup.is_set():
                raise ClientDisconnected from None
            raise
        finally:
            self.end(hangup)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for call in self._calls.values():
            if call.listener is None and now - call.since >= WATCH_AFTER:
                call.listener = loop.create_task(self._listen(call))
        self._timer = loop.call_later(WATCH_AFTER, self._sweep) if self._calls else None

    async def _listen(self, call: _Call) -> None:
        while (await call.receive())["type"] != "http.disconnect":
            pass
        call.hangup.set()
        if self._calls.get(id(call.hangup)) is call and call.waiting is not None:
            call.waiting.cancel()
