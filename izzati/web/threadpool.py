"""A thread pool for plain callbacks with the fewest hops between the event loop and a thread."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

from ..defaults import THREADS

__all__ = ["CallbackPool", "in_daemon_thread"]

_Item = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", contextvars.Context, Callable[[], Any]]


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():  # the request went away (timeout, disconnect): nobody waits
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class CallbackPool:
    """Runs calls in up to `max_threads` threads; an idle thread takes the next call at once.

    Compared with `loop.run_in_executor`: one asyncio future and one `call_soon_threadsafe` per
    call, no `concurrent.futures.Future` chained onto it.
    """

    def __init__(self, max_threads: int = THREADS, name: str = "izzati-callback") -> None:
        self.max_threads = max_threads
        self.name = name
        self._calls: SimpleQueue[_Item | None] = SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def run(self, call: Callable[[], Any]) -> asyncio.Future[Any]:
        """Schedule `call` in a thread (with this context's variables); await the returned future."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._calls.put((loop, future, contextvars.copy_context(), call))
        if not self._idle.acquire(blocking=False):
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
            loop, future, context, call = item
            try:
                result = context.run(call)
            except BaseException as exc:
                outcome: tuple[bool, Any] = (False, exc)
            else:
                outcome = (True, result)
            del item, call, context  # don't keep the request alive while idle
            try:
                loop.call_soon_threadsafe(_settle, future, *outcome)
            except RuntimeError:  # the loop closed meanwhile: nobody waits for this result
                pass
            del future, outcome
            self._idle.release()

    def shutdown(self) -> None:
        """Let the threads end once the calls they run return."""
        with self._lock:
            for _ in self._threads:
                self._calls.put(None)
            self._threads.clear()


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
