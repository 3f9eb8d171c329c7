"""The ``redis://`` queue: a Redis stream with one consumer group, heartbeats and reclaiming.

Design (Redis streams, the consumer-group pattern):

- ``put`` is ``XADD {name}:stream * d <json>``; ``get`` is ``XREADGROUP`` in group ``izzati`` with a
  consumer name unique to this process and instance (renewed after ``fork``). A taken entry stays
  in the group's pending list until acknowledged: ``task_done()`` or the next ``get()`` runs
  ``XACK`` + ``XDEL`` atomically (a Lua script that, on ``get``, also reads the next entry).
- A consumer that has called ``get()`` keeps ``{name}:hb:{consumer}`` alive (TTL
  ``redelivery_timeout / 2``, refreshed every ``redelivery_timeout / 8`` by a daemon thread).
  Every ``redelivery_timeout / 4`` a consumer in ``get()`` looks for consumers without heartbeat
  and ``XCLAIM``s their pending entries, so a killed worker's item comes back within about
  ``0.75 * redelivery_timeout``, and a slow but live worker keeps its item. (A C extension
  holding the GIL longer than ``redelivery_timeout / 2`` stops the heartbeat: its item goes back.)
- Delivery is at least once: a ``put`` retried after a lost reply can add an item twice, and a
  worker that dies after finishing but before acknowledging has its item redelivered.

redis-py is imported here only when a queue is created, so ``import izzati.queues`` stays light.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import secrets
import socket
import threading
import time
import urllib.parse
import weakref
from typing import TYPE_CHECKING, Any

from .exceptions import ConfigError, QueueClosed, QueueError, QueueUnavailable

if TYPE_CHECKING:
    import redis

__all__ = ["RedisQueue", "mask_url"]

# Acknowledge (XACK + XDEL, atomically) what this consumer took, then read up to ARGV[3] new
# entries without blocking, all in one round trip. ARGV: group, consumer, count, ids...
_ACK_READ = """
if #ARGV > 3 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 4))
  redis.call('XDEL', KEYS[1], unpack(ARGV, 4))
end
if ARGV[3] == '0' then return false end
return redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
                  'STREAMS', KEYS[1], '>')
"""
_GROUP = "izzati"
_MAX_BACKOFF = 1.0
_Entry = tuple[str, Any]


def mask_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(resp: Any) -> list[_Entry]:
    """Flatten an XREADGROUP/XCLAIM reply (RESP2, RESP3 or raw Lua) to ``[(id, payload)]``."""
    if not resp:
        return []
    if isinstance(resp, dict):
        resp = [[k, v[0] if v and isinstance(v[0], list) else v] for k, v in resp.items()]
    if isinstance(resp[0], list | tuple) and len(resp[0]) == 2 and isinstance(resp[0][1], list):
        if resp[0][1] and isinstance(resp[0][1][0], list | tuple):  # [[stream, entries]]
            resp = [e for _, entries in resp for e in entries]
    out: list[_Entry] = []
    for entry_id, fields in resp:
        if isinstance(fields, dict):
            payload = next(iter(fields.values()), None)
        else:
            payload = fields[1] if fields else None
        out.append((_str(entry_id), payload))
    return out


def _heartbeat(client: redis.Redis, key: str, ttl_ms: int, interval: float, stop: threading.Event) -> None:
    """Refresh ``key`` every ``interval`` seconds until ``stop`` is set (a daemon thread)."""
    while not stop.wait(interval):
        try:
            client.set(key, os.getpid(), px=ttl_ms)
        except Exception:  # an outage must not kill the heartbeat; retry next tick
            pass


def _rebuild(url: str, options: dict[str, Any]) -> RedisQueue:
    return RedisQueue(url, **options)


class RedisQueue:
    """A queue on a Redis stream shared by any number of processes and machines.

    Items travel as JSON. ``url`` (``redis://`` or ``rediss://``) or a ready redis-py ``client``
    names the server; ``name`` prefixes every key (``{name}:stream``, ``{name}:hb:{consumer}``).
    ``redelivery_timeout`` bounds how long an item taken by a dead worker stays invisible;
    ``connect_timeout`` bounds how long ``put()`` retries while Redis is unreachable;
    ``maxsize`` > 0 makes ``put()`` wait (best effort) while that many items are waiting;
    ``prefetch`` is how many entries one read takes (they stay pending, so they are redelivered
    if this worker dies, but a live slow worker keeps them).

    Acknowledgement: ``task_done()`` acknowledges the items this instance returned from ``get()``,
    and so does the next ``get()`` (a ``while True: item = q.get()`` loop never loses an item).
    An unacknowledged item whose worker stopped heartbeating is claimed by another worker.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        name: str = "izzati",
        client: redis.Redis | None = None,
        redelivery_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        socket_timeout: float = 5.0,
        maxsize: int = 0,
        prefetch: int = 1,
    ) -> None:
        if client is None and url is None:
            raise ConfigError("RedisQueue needs url='redis://host:port/db' or client=")
        if redelivery_timeout <= 0 or prefetch < 1:
            raise ConfigError(
                f"RedisQueue: redelivery_timeout={redelivery_timeout!r} must be > 0 and prefetch={prefetch!r} >= 1"
            )
        self.name = name
        self.url = url if url is not None else _url_of(client)
        self._options: dict[str, Any] = dict(
            name=name,
            redelivery_timeout=redelivery_timeout,
            connect_timeout=connect_timeout,
            socket_timeout=socket_timeout,
            maxsize=maxsize,
            prefetch=prefetch,
        )
        self._key = f"{name}:stream"
        self._rt = redelivery_timeout
        self._connect_timeout = connect_timeout
        self._socket_timeout = socket_timeout
        self._maxsize = maxsize
        self._prefetch = prefetch
        self._own_client = client is None
        self._client = client if client is not None else self._connect()
        self._closed = False
        self._reset_identity()

    # -- identity, fork safety, heartbeat ------------------------------------------------------

    def _connect(self) -> redis.Redis:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:
            raise ConfigError(
                f"queue URL {mask_url(str(self.url))!r} needs redis-py: pip install 'izzati[redis]'"
            ) from exc
        try:
            return redis.Redis.from_url(
                str(self.url),
                socket_timeout=self._socket_timeout,
                socket_connect_timeout=min(self._socket_timeout, 2.0),
                retry=Retry(NoBackoff(), 0),  # izzati retries itself, with its own deadlines
            )
        except ValueError as exc:
            raise ConfigError(f"bad queue URL {mask_url(str(self.url))!r}: {exc}") from exc

    def _reset_identity(self) -> None:
        self._pid = os.getpid()
        self.consumer = f"{socket.gethostname()}-{self._pid}-{secrets.token_hex(3)}"
        self._hb_key = f"{self.name}:hb:{self.consumer}"
        self._hb_stop: threading.Event | None = None
        self._buffer: collections.deque[_Entry] = collections.deque()
        self._unacked: list[str] = []
        self._recover = False
        self._next_reclaim = 0.0
        self._sha: str | None = None
        self._lock = threading.Lock()  # one get()/task_done() at a time per instance

    def _check(self) -> None:
        if self._closed:
            raise QueueClosed(f"queue {self.name!r} on {mask_url(self.url)} is closed")
        if os.getpid() != self._pid:  # forked: new connections and a new consumer identity
            if self._own_client:
                self._client = self._connect()
            self._reset_identity()

    def _start_heartbeat(self) -> None:
        if self._hb_stop is not None:
            return
        ttl_ms = max(int(self._rt * 500), 100)
        self._client.set(self._hb_key, self._pid, px=ttl_ms)
        stop = self._hb_stop = threading.Event()
        args = (self._client, self._hb_key, ttl_ms, self._rt / 8, stop)
        threading.Thread(target=_heartbeat, args=args, daemon=True, name="izzati-hb").start()
        weakref.finalize(self, stop.set)

    # -- put ---------------------------------------------------------------------------------------

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
            delay = 0.005
            while self.qsize() >= self._maxsize:
                if not block or (timeout is not None and time.monotonic() - start >= timeout):
                    raise queue.Full
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        self._retry(lambda: self._client.xadd(self._key, {"d": payload}), block, start + limit)

    def put_nowait(self, item: Any) -> None:
        """Append ``item`` without waiting."""
        self.put(item, block=False)

    # -- get ---------------------------------------------------------------------------------------

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Take the next item; acknowledge the previous one; raise ``queue.Empty`` on timeout."""
        self._check()
        with self._lock:
            return self._get(block, timeout)

    def _get(self, block: bool, timeout: float | None) -> Any:
        import redis

        deadline = None if timeout is None or not block else time.monotonic() + max(timeout, 0)
        self._start_heartbeat_retrying(block, deadline)
        backoff = 0.05
        while True:
            try:
                if self._recover:
                    self._recover_own()
                self._maybe_reclaim()
                if self._unacked:
                    self._buffer.extend(self._ack_read(0 if self._buffer else self._prefetch))
                if not self._buffer:
                    self._buffer.extend(self._read_blocking(block, deadline))
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._recover = True
                remaining = None if deadline is None else deadline - time.monotonic()
                if not block or (remaining is not None and remaining <= 0):
                    raise self._unavailable(exc) from exc
                time.sleep(backoff if remaining is None else min(backoff, remaining))
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise QueueError(f"queue {self.name!r}: {exc}") from exc
                self._create_group()  # Redis restarted without persistence
                self._unacked.clear()
                continue
            if self._buffer:
                entry_id, payload = self._buffer.popleft()
                self._unacked.append(entry_id)
                return json.loads(payload)
            if not block or (deadline is not None and time.monotonic() >= deadline):
                raise queue.Empty

    def get_nowait(self) -> Any:
        """Take the next item or raise ``queue.Empty``."""
        return self.get(block=False)

    def task_done(self) -> None:
        """Acknowledge every item this instance has returned from ``get()``."""
        self._check()
        with self._lock:
            if self._unacked:
                self._retry(lambda: self._ack_read(0), True, time.monotonic() + self._connect_timeout)

    def _start_heartbeat_retrying(self, block: bool, deadline: float | None) -> None:
        end = time.monotonic() + self._connect_timeout if deadline is None else deadline
        self._retry(self._start_heartbeat, block, end if block else 0.0)

    def _ack_read(self, count: int) -> list[_Entry]:
        import redis

        args = [self._key, _GROUP, self.consumer, count, *self._unacked]
        if self._sha is None:
            self._sha = _str(self._client.script_load(_ACK_READ))
        try:
            resp = self._client.execute_command("EVALSHA", self._sha, 1, *args)  # type: ignore[no-untyped-call]
        except redis.exceptions.NoScriptError:  # Redis restarted and lost its script cache
            resp = self._client.execute_command("EVAL", _ACK_READ, 1, *args)  # type: ignore[no-untyped-call]
        self._unacked.clear()
        return _entries(resp)

    def _read_blocking(self, block: bool, deadline: float | None) -> list[_Entry]:
        ms: int | None = None
        if block:  # short chunks: below the socket timeout, and reclaiming stays on schedule
            chunk = min(1.0, self._rt / 4, self._socket_timeout / 2)
            if deadline is not None:
                chunk = min(chunk, deadline - time.monotonic())
            ms = max(int(chunk * 1000), 1)
        resp = self._client.xreadgroup(_GROUP, self.consumer, {self._key: ">"}, count=self._prefetch, block=ms)
        return _entries(resp)

    def _recover_own(self) -> None:
        """After a lost reply, re-take entries delivered to this consumer that it never saw."""
        resp = self._client.xreadgroup(_GROUP, self.consumer, {self._key: "0"}, count=1000)
        known = set(self._unacked) | {entry_id for entry_id, _ in self._buffer}
        for entry_id, payload in _entries(resp):
            if entry_id not in known and payload is not None:
                self._buffer.append((entry_id, payload))
        self._recover = False

    def _maybe_reclaim(self) -> None:
        """Claim pending entries of consumers whose heartbeat expired; forget idle dead ones."""
        now = time.monotonic()
        if now < self._next_reclaim:
            return
        self._next_reclaim = now + self._rt / 4
        try:
            consumers = self._client.xinfo_consumers(self._key, _GROUP)
        except Exception as exc:
            if "NOGROUP" in str(exc) or "no such key" in str(exc):
                self._create_group()
                return
            raise
        others = [c for c in consumers if _str(c["name"]) != self.consumer]
        if not others:
            return
        pipe = self._client.pipeline(transaction=False)
        for c in others:
            pipe.exists(f"{self.name}:hb:{_str(c['name'])}")
        for c, alive in zip(others, pipe.execute(), strict=True):
            dead = _str(c["name"])
            if alive:
                continue
            if int(c["pending"]) == 0:
                if int(c["idle"]) > self._rt * 1000:
                    self._client.xgroup_delconsumer(self._key, _GROUP, dead)
                continue
            pending = self._client.xpending_range(self._key, _GROUP, min="-", max="+", count=1000, consumername=dead)
            ids: list[Any] = [p["message_id"] for p in pending]
            if not ids:  # another worker claimed them first
                continue
            # min_idle_time: a second worker racing for the same entries loses, because the
            # first claim resets their idle time (a dead consumer's entries are idle >= 3/8 rt).
            claimed = self._client.xclaim(self._key, _GROUP, self.consumer, int(self._rt * 250), ids)
            self._buffer.extend(e for e in _entries(claimed) if e[1] is not None)

    def _create_group(self) -> None:
        import redis

        try:
            self._client.xgroup_create(self._key, _GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # -- inspection and lifetime -------------------------------------------------------------------

    def qsize(self) -> int:
        """Return how many items wait to be taken (not counting items taken but unacknowledged)."""
        self._check()

        def count() -> int:
            pipe = self._client.pipeline(transaction=False)
            pipe.xlen(self._key)
            pipe.xpending(self._key, _GROUP)
            length, pending = pipe.execute(raise_on_error=False)
            taken = int(pending["pending"]) if isinstance(pending, dict) else 0
            return max(int(length) - taken, 0) + len(self._buffer)

        n: int = self._retry(count, True, time.monotonic() + self._connect_timeout)
        return n

    def empty(self) -> bool:
        """Return True if no item waits to be taken."""
        return self.qsize() == 0

    def workers_alive(self) -> int:
        """Return how many consumers of this queue have a fresh heartbeat."""
        self._check()
        return sum(1 for _ in self._client.scan_iter(match=f"{self.name}:hb:*", count=1000))

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
        if self._hb_stop is not None:
            self._hb_stop.set()
            try:
                self._client.delete(self._hb_key)
                if not self._unacked and not self._buffer:
                    self._client.xgroup_delconsumer(self._key, _GROUP, self.consumer)
            except Exception:  # best effort; the heartbeat expires anyway
                pass
        if self._own_client:
            self._client.close()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.url, self._options))

    def __repr__(self) -> str:
        return f"RedisQueue({mask_url(self.url)!r}, name={self.name!r})"

    # -- retries -----------------------------------------------------------------------------------

    def _unavailable(self, exc: BaseException) -> QueueUnavailable:
        return QueueUnavailable(f"Redis at {mask_url(self.url)} is unreachable: {exc}")

    def _retry(self, op: Any, block: bool, deadline: float) -> Any:
        """Run ``op()``, retrying connection errors with capped backoff until ``deadline``."""
        import redis

        backoff = 0.05
        while True:
            try:
                return op()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                remaining = deadline - time.monotonic()
                if not block or remaining <= 0:
                    raise self._unavailable(exc) from exc
                time.sleep(min(backoff, remaining))
                backoff = min(backoff * 2, _MAX_BACKOFF)


def _url_of(client: Any) -> str:
    """Rebuild a URL from a redis-py client, so a queue built on a client can be pickled."""
    pool = client.connection_pool
    kw = pool.connection_kwargs
    db = kw.get("db", 0)
    if "path" in kw:
        return f"unix://{kw['path']}?db={db}"
    scheme = "rediss" if "SSL" in pool.connection_class.__name__ else "redis"
    auth = ""
    if kw.get("password") is not None:
        user = urllib.parse.quote(kw.get("username") or "", safe="")
        auth = f"{user}:{urllib.parse.quote(kw['password'], safe='')}@"
    return f"{scheme}://{auth}{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{db}"
