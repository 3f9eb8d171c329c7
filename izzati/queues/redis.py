"""The ``redis://`` queue: a Redis stream with one consumer group, heartbeats and reclaiming.

Design (Redis streams, the consumer-group pattern):

- ``put`` is ``XADD {name}:stream * d <json>``; ``get`` is ``XREADGROUP`` in group ``izzati`` with a
  consumer name unique to this process and instance (renewed after ``fork``). A taken entry stays
  in the group's pending list until acknowledged: ``task_done()`` or the next ``get()`` runs
  ``XACK`` + ``XDEL`` atomically (a Lua script that, on ``get``, also reads the next entry).
- A consumer that has called ``get()`` keeps its heartbeat in ``{name}:hb`` alive (TTL
  ``redelivery_timeout / 2``, refreshed every ``redelivery_timeout / 8`` by a daemon thread).
  Every ``redelivery_timeout / 4`` a consumer in ``get()`` looks for consumers without heartbeat
  and ``XCLAIM``s their pending entries, so a killed worker's item comes back within about
  ``0.75 * redelivery_timeout``, and a slow but live worker keeps its item. (A C extension
  holding the GIL longer than ``redelivery_timeout / 2`` stops the heartbeat: its item goes back.)
- At least once: a ``put`` retried after a lost reply can add an item twice, a worker that dies
  before acknowledging has its item redelivered. An item delivered ``max_deliveries`` times, or
  not izzati's JSON, is parked as a dead letter (``deadletters.py``), not given to a next worker.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from .. import defaults, tracing
from .._process import backoff
from ..exceptions import ConfigError, QueueClosed, QueueError
from ._stream import MAX_BACKOFF, Consumer, connect, group_lost, mask_url, retry, unavailable, url_of
from .deadletters import DeadLetters
from .reader import NONE, Reader
from .stats import QueueStats, stream_stats

if TYPE_CHECKING:  # redis-py is imported where it is used: `import izzati.queues` stays light
    import redis

__all__ = ["RedisQueue", "mask_url"]


def _rebuild(url: str, options: dict[str, Any]) -> RedisQueue:
    return RedisQueue(url, **options)


class RedisQueue:
    """A queue on a Redis stream shared by any number of processes and machines.

    Items travel as JSON. ``url`` (``redis://`` or ``rediss://``) or a ready redis-py ``client``
    names the server; ``name`` prefixes every key (``{name}:stream``, ``{name}:hb``,
    ``{name}:dead``). ``redelivery_timeout`` bounds how long an item taken by a dead worker stays
    invisible; ``connect_timeout`` how long ``put()`` retries while Redis is unreachable;
    ``maxsize`` > 0 makes ``put()`` wait (best effort) while that many items wait; ``prefetch`` is
    how many entries one read takes; ``max_deliveries`` when an item is parked instead.

    ``task_done()`` acknowledges the items this instance returned from ``get()``, and so does the
    next ``get()`` (a ``while True: item = q.get()`` loop never loses an item).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        name: str = defaults.QUEUE_NAME,
        client: redis.Redis | None = None,
        redelivery_timeout: float = defaults.REDELIVERY_TIMEOUT,
        connect_timeout: float = defaults.QUEUE_CONNECT_TIMEOUT,
        socket_timeout: float = 5.0,
        maxsize: int = 0,
        prefetch: int = 1,
        max_deliveries: int = defaults.MAX_DELIVERIES,
    ) -> None:
        if client is None and url is None:
            raise ConfigError("RedisQueue needs url='redis://host:port/db' or client=")
        if redelivery_timeout <= 0 or prefetch < 1 or max_deliveries < 1:
            raise ConfigError(
                f"RedisQueue: redelivery_timeout={redelivery_timeout!r} must be > 0, prefetch={prefetch!r} and "
                f"max_deliveries={max_deliveries!r} >= 1"
            )
        self.name = name
        self.url = url if url is not None else url_of(client)
        self._options: dict[str, Any] = {
            "name": name,
            "redelivery_timeout": redelivery_timeout,
            "connect_timeout": connect_timeout,
            "socket_timeout": socket_timeout,
            "maxsize": maxsize,
            "prefetch": prefetch,
            "max_deliveries": max_deliveries,
        }
        self._key = f"{name}:stream"
        self._rt = redelivery_timeout
        self._connect_timeout = connect_timeout
        self._socket_timeout = socket_timeout
        self._maxsize = maxsize
        self._prefetch = prefetch
        self._max_deliveries = max_deliveries
        self._own_client = client is None
        self._client = client if client is not None else connect(self.url, socket_timeout)
        self._closed = False
        self._reset_identity()

    def _reset_identity(self) -> None:
        self._pid = os.getpid()
        self._member = Consumer(self._client, self.name, self._rt)
        self.dead_letters = DeadLetters(self._client, self.name)
        """Entries parked instead of delivered: see `izzati.queues.deadletters`."""
        self.consumer = self._member.consumer
        self._reader = Reader(self._member, self.dead_letters, self._prefetch, self._max_deliveries, self._rt)
        self._lock = threading.Lock()  # one get()/task_done() at a time per instance
        weakref.finalize(self, self._member.stop_heartbeat)

    def _check(self) -> None:
        if self._closed:
            raise QueueClosed(f"queue {self.name!r} on {mask_url(self.url)} is closed")
        if os.getpid() != self._pid:  # forked: new connections and a new consumer identity
            if self._own_client:
                self._client = connect(self.url, self._socket_timeout)
            self._reset_identity()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Append ``item`` (JSON-serialisable); raise ``queue.Full`` or ``QueueUnavailable``."""
        try:
            payload = json.dumps(item, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"queue items must be JSON-serialisable; got {type(item).__name__}: {exc}") from exc
        self._check()
        start = time.monotonic()
        limit = self._connect_timeout if timeout is None else max(timeout, 0.0)
        if self._maxsize > 0:
            delays = backoff(0.005, 0.1)
            while self.qsize() >= self._maxsize:
                if not block or (timeout is not None and time.monotonic() - start >= timeout):
                    raise queue.Full
                time.sleep(next(delays))
        with tracing.producing(self.name) if tracing.ACTIVE else tracing.UNTRACED as fields:
            retry(self.url, lambda: self._client.xadd(self._key, {"d": payload, **fields}), block, start + limit)

    put_nowait = functools.partialmethod(put, block=False)
    """Append ``item`` without waiting."""

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Take the next item; acknowledge the previous one; raise ``queue.Empty`` on timeout."""
        self._check()
        with self._lock:
            return self._get(block, timeout)

    def _get(self, block: bool, timeout: float | None) -> Any:
        import redis

        deadline = None if timeout is None or not block else time.monotonic() + max(timeout, 0)
        end = time.monotonic() + self._connect_timeout if deadline is None else deadline
        retry(self.url, self._member.start_heartbeat, block, end if block else 0.0)
        delays = backoff(0.05, MAX_BACKOFF)
        while True:
            try:
                item, parked = self._reader.step(block, deadline, self._socket_timeout)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._reader.recover = True
                remaining = None if deadline is None else deadline - time.monotonic()
                if not block or (remaining is not None and remaining <= 0):
                    raise unavailable(self.url, exc) from exc
                delay = next(delays)
                time.sleep(delay if remaining is None else min(delay, remaining))
                continue
            except redis.ResponseError as exc:
                if not group_lost(exc):
                    raise QueueError(f"queue {self.name!r}: {exc}") from exc
                self._member.create_group()  # Redis restarted without persistence, or a DEL
                self._reader.unacked.clear()
                continue
            if item is not NONE:
                return item
            if not parked and (not block or (deadline is not None and time.monotonic() >= deadline)):
                raise queue.Empty

    def reject(self, reason: str) -> None:
        """Park the items `get()` returned since the last acknowledgement as dead letters, with `reason`."""
        self._check()
        with self._lock:
            self._reader.reject(reason)

    def get_nowait(self) -> Any:
        """Take the next item or raise ``queue.Empty``."""
        return self.get(block=False)

    def task_done(self) -> None:
        """Acknowledge every item this instance has returned from ``get()``."""
        self._check()
        with self._lock:
            if self._reader.unacked:
                retry(self.url, lambda: self._reader.ack_read(0), True, time.monotonic() + self._connect_timeout)

    def qsize(self) -> int:
        """Return how many items wait to be taken (not counting items taken but unacknowledged)."""
        self._check()
        waiting: int = retry(self.url, self._member.waiting, True, time.monotonic() + self._connect_timeout)
        return waiting + len(self._reader.buffer)

    def stats(self) -> QueueStats:
        """Length, lag, pending count and the oldest waiting item's age, now."""
        return stream_stats(self._client, self._member.key)

    def items(self) -> list[Any]:
        """Every item in the queue now: waiting, or taken and not yet acknowledged."""
        found = retry(self.url, self._member.all_items, True, time.monotonic() + self._connect_timeout)
        return [decoded for _, decoded in found]

    def empty(self) -> bool:
        """Return True if no item waits to be taken."""
        return self.qsize() == 0

    def workers_alive(self) -> int:
        """Return how many consumers of this queue have a fresh heartbeat."""
        self._check()
        return self._member.workers_alive()

    def ping(self) -> bool:
        """Return True if Redis answers."""
        try:
            self._check()
            return bool(self._client.ping())
        except Exception:  # a probe answers, it does not raise
            return False

    def close(self) -> None:
        """Stop the heartbeat and disconnect; unacknowledged items go back to other workers."""
        if self._closed:
            return
        self._closed = True
        if os.getpid() != self._pid:
            return
        self._member.leave(forget=not self._reader.unacked and not self._reader.buffer)
        if self._own_client:
            self._client.close()

    @property
    def traceparent(self) -> str | None:
        """The W3C traceparent of the span that put the item `get()` returned last (see izzati.tracing)."""
        return self._reader.traceparent

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.url, self._options))

    def __repr__(self) -> str:
        return f"RedisQueue({mask_url(self.url)!r}, name={self.name!r})"
