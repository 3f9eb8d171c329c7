"""Queues between the web process and workers: one protocol, ``memory://`` and ``redis://``.

``open_queue(url)`` resolves a URL to a queue:

- ``memory://`` → :class:`MemoryQueue`, a ``multiprocessing`` queue. It lives in one process tree
  (it reaches workers by ``fork``), and an item taken by a worker that crashes is gone.
- ``redis://`` / ``rediss://`` → :class:`RedisQueue`, a Redis stream with a consumer group. Any
  number of processes on any machines share it; items travel as JSON; an item whose worker died
  before acknowledging it is redelivered to another worker within ``redelivery_timeout`` seconds.

Both raise the standard library's ``queue.Empty`` / ``queue.Full`` like ``multiprocessing.Queue``.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any, Protocol, runtime_checkable

from .. import defaults
from .._process import backoff
from ..exceptions import ConfigError, QueueUnavailable
from ._stream import connect, mask_url
from .deadletters import DeadLetter, DeadLetters
from .memory import MemoryQueue
from .redis import RedisQueue

__all__ = [
    "Queue",
    "Monitored",
    "Listing",
    "MemoryQueue",
    "RedisQueue",
    "DeadLetter",
    "DeadLetters",
    "open_queue",
    "resolve_queue",
    "mask_url",
    "check_login",
]


@runtime_checkable
class Queue(Protocol):
    """What a worker and a callback see as ``q``: the ``multiprocessing.Queue`` surface + ack."""

    def put(self, item: Any, /, block: bool = True, timeout: float | None = None) -> None:
        """Append an item; raise ``queue.Full`` if there is no room in time."""

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Take the next item; raise ``queue.Empty`` if none comes in time."""

    def put_nowait(self, item: Any, /) -> None:
        """Append an item or raise ``queue.Full`` at once."""

    def get_nowait(self) -> Any:
        """Take the next item or raise ``queue.Empty`` at once."""

    def empty(self) -> bool:
        """Return True if no item waits (a snapshot: it may change at once)."""

    def qsize(self) -> int:
        """Return how many items wait (approximate)."""

    def close(self) -> None:
        """Release this handle's resources; the queue's items stay."""

    def task_done(self) -> None:
        """Acknowledge the items taken with ``get()``: they are done and will not come back."""

    def reject(self, reason: str) -> None:
        """Park the items taken with ``get()`` as dead letters (where the queue can), not done."""


@runtime_checkable
class Monitored(Protocol):
    """A networked queue that a readiness probe can ask about its broker and its workers."""

    def ping(self) -> bool:
        """Return True if the broker answers."""

    def workers_alive(self) -> int:
        """Return how many workers have a fresh heartbeat."""

    @property
    def dead_letters(self) -> DeadLetters:
        """The entries parked instead of delivered."""


@runtime_checkable
class Listing(Protocol):
    """A queue that can list what it holds (so lost jobs can be found)."""

    def items(self) -> list[Any]:
        """Every item in the queue now: waiting, or taken and not yet acknowledged."""


def open_queue(
    url: str,
    *,
    name: str = defaults.QUEUE_NAME,
    maxsize: int = 0,
    connect_timeout: float = defaults.QUEUE_CONNECT_TIMEOUT,
    redelivery_timeout: float = defaults.REDELIVERY_TIMEOUT,
    max_deliveries: int = defaults.MAX_DELIVERIES,
) -> Queue:
    """Return the queue ``url`` names: ``memory://`` or ``redis://host:port/db``.

    For Redis, wait up to ``connect_timeout`` seconds (retrying with backoff, so the start order
    of containers does not matter) and raise ``QueueUnavailable`` if it does not answer.
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme == "memory":
        return MemoryQueue(maxsize)
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"unknown queue URL scheme {scheme!r} in {mask_url(url)!r}: use memory:// or redis://")
    q = RedisQueue(
        url,
        name=name,
        maxsize=maxsize,
        connect_timeout=connect_timeout,
        redelivery_timeout=redelivery_timeout,
        max_deliveries=max_deliveries,
    )
    try:
        check_login(url)
    except ConfigError:
        q.close()
        raise
    deadline = time.monotonic() + connect_timeout
    delays = backoff(0.1, 1.0)
    while not q.ping():
        remaining = deadline - time.monotonic()
        if remaining <= 0:  # the last try was at the deadline: it gave up after the whole timeout, not before
            q.close()
            raise QueueUnavailable(
                f"Redis at {mask_url(url)} did not answer within {connect_timeout:g}s "
                "(is it running, and is the URL right?)"
            )
        time.sleep(min(next(delays), remaining))
    return q


def check_login(url: str) -> None:
    """Fail at once (`ConfigError`) when Redis refuses the user name or password in `url`, or
    its TLS certificate is not trusted: no wait mends that. A Redis that does not answer passes:
    the caller waits for it."""
    import redis

    client = connect(url, 2.0)
    try:
        client.ping()
    except (redis.AuthenticationError, redis.exceptions.NoPermissionError) as exc:
        raise ConfigError(f"Redis at {mask_url(url)} refused the login: {exc}") from None
    except redis.RedisError as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            raise ConfigError(
                f"Redis at {mask_url(url)}: its TLS certificate is not trusted ({exc}); name the CA that "
                "signed it in the URL: rediss://...?ssl_ca_certs=/path/to/ca.pem"
            ) from None
    finally:
        client.close()


def resolve_queue(queue: Queue | str | None) -> Queue:
    """The queue an argument names: a queue as is, a URL opened, None a new memory queue."""
    if queue is None:
        return MemoryQueue()
    if isinstance(queue, str):
        return open_queue(queue)
    return queue
