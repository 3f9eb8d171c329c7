"""A thread pool for plain callbacks with the fewest hops between the event loop and a thread."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import deque
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any

from ..defaults import THREADS

__all__ = ["CallbackPool", "in_daemon_thread"]

_Item = tuple["_Results", "asyncio.Future[Any]", contextvars.Context, Callable[[], Any]]


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():  # the request went away (timeout, disconnect): nobody waits
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class _Results:
    """Outcomes on their way back to one event loop: one wake-up of the loop for all that arrive
    before it runs (under load, several calls end per turn of the loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._ready: deque[tuple[asyncio.Future[Any], bool, Any]] = deque()
        self._woken = False

    def put(self, future: asyncio.Future[Any], ok: bool, value: Any) -> None:
        """From a pool thread: hand an outcome to the loop."""
        self._ready.append((future, ok, value))
        if not self._woken:  # two threads may both wake it: one drain then finds nothing, harmless
            self._woken = True
            self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._woken = False  # before taking: an outcome put from here on wakes the loop again
        ready = self._ready
        while ready:
            _settle(*ready.popleft())


class CallbackPool:
    """Runs calls in up to `max_threads` threads; an idle thread takes the next call at once.

    Compared with `loop.run_in_executor`: one asyncio future per call, no
    `concurrent.futures.Future` chained onto it, and one `call_soon_threadsafe` for all the
    outcomes that arrive before the loop runs (measured on a small JSON echo, `python -m bench peers`).
    """

    def __init__(self, max_threads: int = THREADS, name: str = "izzati-callback") -> None:
        self.max_threads = max_threads
        self.name = name
        self._calls: SimpleQueue[_Item | None] = SimpleQueue()
        self._idle: SimpleQueue[None] = SimpleQueue()  # one token per idle thread (C, no Condition)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._results: dict[asyncio.AbstractEventLoop, _Results] = {}

    def run(self, call: Callable[[], Any]) -> asyncio.Future[Any]:
        """Schedule `call` in a thread (with this context's variables); await the returned future."""
        loop = asyncio.get_running_loop()
        results = self._results.get(loop)
        if results is None:
            results = self._results.setdefault(loop, _Results(loop))
        future = loop.create_future()
        self._calls.put((results, future, contextvars.copy_context(), call))
        try:
            self._idle.get_nowait()
        except Empty:
            self._grow()
        return future

    def _grow(self) -> None:
        with self._lock:
            if len(self._threads) >= self.max_threads:
                return  # every thread is busy: the call waits for the first to come free
            thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while True:
            item = self._calls.get()
            if item is None:
                return
            results, future, context, call = item
            try:
                result = context.run(call)
            except BaseException as exc:
                outcome: tuple[bool, Any] = (False, exc)
            else:
                outcome = (True, result)
            del item, call, context  # don't keep the request alive while idle
            try:
                results.put(future, *outcome)
            except RuntimeError:  # the loop closed meanwhile: nobody waits for this result
                pass
            del future, outcome, results
            self._idle.put(None)

    def shutdown(self) -> None:
        """Let the threads end once the calls they run return."""
        with self._lock:
            for _ in self._threads:
                self._calls.put(None)
            self._threads.clear()
        self._results.clear()


async def in_daemon_thread(call: Callable[[], Any], name: str) -> Any:
    """Await `call()` run on a daemon thread of its own. Unlike `asyncio.to_thread` (an executor
    thread, joined at exit), a call that never returns does not keep the process from exiting."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def run() -> None:
        try:
            ok, value = True, call()
        except BaseException as exc:  # handed to the awaiting task, which decides
            ok, value = False, exc
        try:
            loop.call_soon_threadsafe(_settle, future, ok, value)
        except RuntimeError:  # the loop is closed: the server stopped while the call ran
            pass

    threading.Thread(target=run, name=name, daemon=True).start()
    return await future
