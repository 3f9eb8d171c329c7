"""Telling a client's `callback_url` that its job ended: a JSON POST, retried with backoff.

Deliveries share one small pool of threads per process: at most `threads` POSTs are in flight, at
most `per_host` of them to one host, and a delivery waiting for its next attempt holds no thread
and no socket. One thread per delivery (the first design) let a target that never answers collect
one thread and one socket per finished job: 600 jobs made 322 threads, and under `ulimit -n 256`
the job runner itself failed with `Too many open files`.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import json
import logging
import os
import re
import threading
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..exceptions import BadRequest
from ..queues import mask_url
from .model import JobRecord, public_status

__all__ = ["DeliveryPool", "check_callback_url", "deliveries", "mask_callback_url", "notify"]

logger = logging.getLogger("izzati.jobs")

# a query's values are often secrets (`?token=...`): the logs show the names only
_QUERY_VALUE = re.compile(r"=[^&#]*")


# what an HTTP client refuses to send (http.client: "URL can't contain control characters"), and
# a host name's labels: letters, digits, '-' and '_', one dot between two
_UNSENDABLE = re.compile(r"[\x00-\x20\x7f]")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return _HOST_NAME.fullmatch(ascii_host) is not None


def check_callback_url(url: Any) -> None:
    """Refuse (400, with the reason) a `callback_url` that cannot be posted to as it is."""
    if not isinstance(url, str):
        raise BadRequest("callback_url must be one http:// or https:// URL")
    if _UNSENDABLE.search(url):
        raise BadRequest("callback_url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # parsed lazily: an out-of-range port raises here
    except ValueError as exc:
        raise BadRequest(f"callback_url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise BadRequest("callback_url must be one http:// or https:// URL")
    if not parts.hostname:
        raise BadRequest("callback_url has no host")
    if not _valid_host(parts.hostname):
        raise BadRequest("callback_url has a host that is not a valid name or address")
    if port == 0:
        raise BadRequest("callback_url has port 0")
    if parts.username is not None or parts.password is not None:
        # such a URL would be stored and logged with its secret; a token belongs in a header
        # the receiver checks, or in the path
        raise BadRequest("callback_url must not contain a user name or password")


def mask_callback_url(url: str) -> str:
    """`url` fit for a log line: no password, and every query value replaced by `***`."""
    base, question, rest = mask_url(url).partition("?")
    if not question:
        return base
    query, hash_, fragment = rest.partition("#")
    return f"{base}?{_QUERY_VALUE.sub('=***', query)}{hash_}{'***' if fragment else ''}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# redirects are not followed: the status goes to the URL the client gave, nowhere else
_OPENER = urllib.request.build_opener(_NoRedirect)


def _post(url: str, body: bytes, timeout: float) -> str | None:
    """One POST of `body` to `url`: None when it was taken (2xx), else why not."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return None if 200 <= response.status < 300 else f"status {response.status}"
    except Exception as exc:  # any failure is retried the same way
        return str(exc)


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    url: str = field(compare=False)
    host: str = field(compare=False)
    body: bytes = field(compare=False)
    attempt: int = field(default=1, compare=False)


class DeliveryPool:
    """Posts final statuses to callback URLs on a bounded set of daemon threads.

    Arguments:
        threads: most POSTs in flight at once (threads started as needed, up to this many).
        per_host: most POSTs in flight to one host; a slow host never takes every thread.
        attempts: tries per delivery, `first_delay` seconds apart, doubling after each.
        timeout: seconds one attempt may take (connect, send and answer).
        max_pending: most deliveries held; beyond it a new one is dropped and logged.
    """

    def __init__(
        self,
        *,
        threads: int = 8,
        per_host: int = 2,
        attempts: int = 5,
        first_delay: float = 0.5,
        timeout: float = 10.0,
        max_pending: int = 10_000,
    ) -> None:
        self.threads = threads
        self.per_host = per_host
        self.attempts = attempts
        self.first_delay = first_delay
        self.timeout = timeout
        self.max_pending = max_pending
        self._lock = threading.Condition()
        self._ready: dict[str, deque[_Delivery]] = {}  # by host, in arrival order
        self._later: list[_Delivery] = []  # a heap of retries, by due time
        self._busy: dict[str, int] = {}
        self._pending = 0
        self._workers = 0
        self._idle = 0
        self._seq = itertools.count()

    def submit(self, url: str, status: dict[str, Any]) -> bool:
        """Queue the POST of `status` to `url`; False when too many deliveries are pending."""
        host = (urlsplit(url).netloc or url).lower()
        delivery = _Delivery(0.0, next(self._seq), url, host, json.dumps(status).encode())
        with self._lock:
            if self._pending >= self.max_pending:
                logger.error("callback_url %s: dropped, %d deliveries pending", mask_callback_url(url), self._pending)
                return False
            self._pending += 1
            self._ready.setdefault(host, deque()).append(delivery)
            if self._idle == 0 and self._workers < self.threads:
                self._workers += 1
                threading.Thread(target=self._work, name=f"izzati-webhook-{self._workers}", daemon=True).start()
            self._lock.notify()
        return True

    def _next(self) -> _Delivery:
        """The next delivery whose time has come and whose host has a free slot (waits for one)."""
        with self._lock:
            while True:
                now = time.monotonic()
                while self._later and self._later[0].due <= now:
                    retry = heapq.heappop(self._later)
                    self._ready.setdefault(retry.host, deque()).append(retry)
                for host, waiting in self._ready.items():
                    if waiting and self._busy.get(host, 0) < self.per_host:
                        delivery = waiting.popleft()
                        if not waiting:
                            del self._ready[host]
                        self._busy[host] = self._busy.get(host, 0) + 1
                        return delivery
                self._idle += 1
                self._lock.wait(self._later[0].due - now if self._later else None)
                self._idle -= 1

    def _done(self, delivery: _Delivery, retry_in: float | None) -> None:
        with self._lock:
            self._busy[delivery.host] -= 1
            if not self._busy[delivery.host]:
                del self._busy[delivery.host]
            if retry_in is None:
                self._pending -= 1
            else:
                delivery.due = time.monotonic() + retry_in
                delivery.attempt += 1
                heapq.heappush(self._later, delivery)
            self._lock.notify_all()  # a slot of this host is free, or the next due time changed

    def _work(self) -> None:
        while True:
            delivery = self._next()
            failure = _post(delivery.url, delivery.body, self.timeout)
            retry_in: float | None = None
            if failure is not None:
                shown = mask_callback_url(delivery.url)
                logger.warning("callback_url %s: attempt %d failed: %s", shown, delivery.attempt, failure)
                if delivery.attempt < self.attempts:
                    retry_in = self.first_delay * 2 ** (delivery.attempt - 1)
                else:
                    logger.error("callback_url %s: giving up after %d attempts", shown, delivery.attempt)
            self._done(delivery, retry_in)


_pool: DeliveryPool | None = None
_pool_lock = threading.Lock()


def _forked() -> None:
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()  # a forked child has none of the parent's threads


os.register_at_fork(after_in_child=_forked)


def deliveries() -> DeliveryPool:
    """This process's delivery pool, made at its first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = DeliveryPool()
        return _pool


def notify(record: JobRecord) -> None:
    """Queue the POST of the job's final status to its `callback_url`, if it has one."""
    url = record.get("callback_url")
    if url:
        deliveries().submit(url, public_status(record))
