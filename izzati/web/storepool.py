"""The threads that wait on the job store's object store (S3), apart from everything else.

A frozen store (a SIGSTOPped SeaweedFS, a stalled network) once held every thread of the event
loop's default executor, where the probes and the Redis-only job routes run too: `/ready`,
`/metrics` and `GET /jobs/<id>` took 20-100 s. Calls that may reach the object store (a submit
with files, a result) run here instead, on at most `STORE_THREADS` threads; when all of them
wait, the next call is refused at once with a 503 `store_unavailable`, and the store's own
timeouts (`izzati.jobs.objects`) free the threads within seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from .._process import current_pid
from ..exceptions import JobStoreUnavailable
from .threadpool import CallbackPool

__all__ = ["StorePool", "store_pool", "STORE_THREADS"]

T = TypeVar("T")
STORE_THREADS = 16


class StorePool:
    """Runs calls that may wait on the object store on at most `size` threads, never queueing one."""

    def __init__(self, size: int = STORE_THREADS) -> None:
        self.size = size
        self._pool = CallbackPool(size, name="izzati-store")
        self._busy = 0
        self._lock = threading.Lock()

    async def run(self, call: Callable[[], T]) -> T:
        """`call()` in a store thread; `JobStoreUnavailable` at once when every one is taken."""
        with self._lock:
            if self._busy >= self.size:
                raise JobStoreUnavailable(
                    f"the object store is not answering: all {self.size} threads that reach it are waiting for it"
                )
            self._busy += 1

        def counted() -> T:
            try:
                return call()
            finally:  # when the thread is free, also for a caller that stopped waiting
                with self._lock:
                    self._busy -= 1

        result: T = await self._pool.run(counted)
        return result


_pools: dict[int, StorePool] = {}


def store_pool() -> StorePool:
    """This process's store pool (a forked server process makes its own)."""
    pid = current_pid()
    pool = _pools.get(pid)
    if pool is None:
        pool = _pools[pid] = StorePool()
    return pool
