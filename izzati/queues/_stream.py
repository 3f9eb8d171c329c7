"""The Redis side of the ``redis://`` queue, below the Queue surface: the consumer group, its
ack-and-read script, reply parsing, heartbeats, taking over a dead consumer's entries, and URLs."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._process import backoff
from ..exceptions import ConfigError, QueueUnavailable
from ..tracing import Traced
from .heartbeats import Heartbeats
from .urls import mask_url, url_of

if TYPE_CHECKING:
    import redis

    from .deadletters import DeadLetters

__all__ = [
    "Consumer",
    "Entry",
    "GROUP",
    "MAX_BACKOFF",
    "connect",
    "group_lost",
    "mask_url",
    "retry",
    "unavailable",
    "url_of",
]

# Acknowledge (XACK + XDEL, atomically) what this consumer took, then read up to ARGV[3] new
# entries without blocking, all in one round trip. ARGV: group, consumer, count, ids...
ACK_READ = """
if #ARGV > 3 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 4))
  redis.call('XDEL', KEYS[1], unpack(ARGV, 4))
end
if ARGV[3] == '0' then return false end
return redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
                  'STREAMS', KEYS[1], '>')
"""
GROUP = "izzati"
# retries of a lost connection wait at most this long between tries
MAX_BACKOFF = 1.0
Entry = tuple[str, Any]


def text(value: Any) -> str:
    """A Redis reply value as text (bytes that are not UTF-8 escaped, never an error)."""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)


def entries(resp: Any) -> list[Entry]:
    """Flatten an XREADGROUP/XCLAIM reply (RESP2, RESP3 or raw Lua) to ``[(id, payload)]``: the
    entry's ``d`` field, all its fields when it has none (not izzati's), None when deleted."""
    if not resp:
        return []
    if isinstance(resp, dict):
        resp = [[k, v[0] if v and isinstance(v[0], list) else v] for k, v in resp.items()]
    if isinstance(resp[0], list | tuple) and len(resp[0]) == 2 and isinstance(resp[0][1], list):
        if resp[0][1] and isinstance(resp[0][1][0], list | tuple):  # [[stream, entries]]
            resp = [e for _, entries in resp for e in entries]
    out: list[Entry] = []
    for entry_id, fields in resp:
        if not fields:  # deleted while pending
            out.append((text(entry_id), None))
            continue
        if not isinstance(fields, dict):
            fields = dict(zip(fields[::2], fields[1::2], strict=False))
        payload = fields.get(b"d", fields.get("d"))
        if payload is not None and (traceparent := fields.get(b"t", fields.get("t"))) is not None:
            payload = Traced(payload, traceparent)  # the span that put it: see izzati.tracing
        # an entry without izzati's field comes with all its fields, to be parked as foreign
        out.append((text(entry_id), fields if payload is None else payload))
    return out


def unavailable(url: str, exc: BaseException) -> QueueUnavailable:
    """The error for a Redis that does not answer (its password masked)."""
    return QueueUnavailable(f"Redis at {mask_url(url)} is unreachable: {exc}")


def retry(url: str, op: Callable[[], Any], block: bool, deadline: float) -> Any:
    """Run ``op()``, retrying connection errors with capped backoff until ``deadline``."""
    import redis

    delays = backoff(0.05, MAX_BACKOFF)
    while True:
        try:
            return op()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            remaining = deadline - time.monotonic()
            if not block or remaining <= 0 or isinstance(exc, redis.AuthenticationError):  # no wait mends that
                raise unavailable(url, exc) from exc
            time.sleep(min(next(delays), remaining))


def group_lost(exc: BaseException) -> bool:
    """Whether a Redis error says the stream or its group is gone: Redis restarted without its
    data (NOGROUP), or the stream was deleted under a blocked XREADGROUP (a DEL, a FLUSHDB, an
    eviction: UNBLOCKED). Either way the group is recreated and the queue goes on."""
    message = str(exc)
    return "NOGROUP" in message or "no such key" in message or "UNBLOCKED the stream key" in message


def create_group(client: redis.Redis, key: str) -> None:
    """Create the consumer group (and the stream) unless it exists."""
    import redis

    try:
        client.xgroup_create(key, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def connect(url: str, socket_timeout: float) -> redis.Redis:
    """A redis-py client for `url` that fails fast: izzati retries itself, with its own deadlines."""
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as exc:
        raise ConfigError(f"queue URL {mask_url(url)!r} needs redis-py: pip install 'izzati[redis]'") from exc
    try:
        return redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=min(socket_timeout, 2.0),
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as exc:
        raise ConfigError(f"bad queue URL {mask_url(url)!r}: {exc}") from exc


class Consumer:
    """One member of a stream's consumer group: a name unique to this process and instance, its
    heartbeat, and the raw stream operations it makes (without retries: the queue retries)."""

    def __init__(self, client: redis.Redis, name: str, redelivery_timeout: float) -> None:
        self.client = client
        self.name = name
        self.key = f"{name}:stream"
        self.redelivery_timeout = redelivery_timeout
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.heartbeats = Heartbeats(client, name)
        self._heartbeat_stop: threading.Event | None = None
        self._sha: str | None = None

    def start_heartbeat(self) -> None:
        """Keep this consumer's heartbeat key alive from a daemon thread (once)."""
        if self._heartbeat_stop is not None:
            return
        ttl_ms = max(int(self.redelivery_timeout * 500), 100)
        self.heartbeats.beat(self.consumer, ttl_ms)
        stop = self._heartbeat_stop = threading.Event()
        args = (self.consumer, ttl_ms, self.redelivery_timeout / 8, stop)
        threading.Thread(target=self.heartbeats.keep, args=args, daemon=True, name="izzati-hb").start()

    def stop_heartbeat(self) -> None:
        """Stop refreshing the heartbeat (it expires on its own)."""
        if self._heartbeat_stop is not None:
            self._heartbeat_stop.set()

    def leave(self, *, forget: bool) -> None:
        """Stop the heartbeat and delete it; `forget` also removes this consumer from the group."""
        if self._heartbeat_stop is None:
            return
        self.stop_heartbeat()
        try:
            self.heartbeats.forget(self.consumer)
            if forget:
                self.client.xgroup_delconsumer(self.key, GROUP, self.consumer)
        except Exception:  # best effort; the heartbeat expires anyway
            pass

    def create_group(self) -> None:
        """Create the consumer group (and the stream) unless it exists."""
        create_group(self.client, self.key)

    def ack_read(self, ids: list[str], count: int) -> list[Entry]:
        """Acknowledge and delete `ids`, then read up to `count` new entries, in one round trip."""
        import redis

        args = [self.key, GROUP, self.consumer, count, *ids]
        if self._sha is None:
            self._sha = text(self.client.script_load(ACK_READ))
        try:
            resp = self.client.execute_command("EVALSHA", self._sha, 1, *args)  # type: ignore[no-untyped-call]
        except redis.exceptions.NoScriptError:  # Redis restarted and lost its script cache
            resp = self.client.execute_command("EVAL", ACK_READ, 1, *args)  # type: ignore[no-untyped-call]
        return entries(resp)

    def read(self, count: int, block: bool, deadline: float | None, socket_timeout: float) -> list[Entry]:
        """Read up to `count` new entries; when blocking, wait a short chunk (at most until `deadline`)."""
        ms: int | None = None
        if block:  # short chunks: below the socket timeout, and reclaiming stays on schedule
            chunk = min(1.0, self.redelivery_timeout / 4, socket_timeout / 2)
            if deadline is not None:
                chunk = min(chunk, deadline - time.monotonic())
            ms = max(int(chunk * 1000), 1)
        return entries(self.client.xreadgroup(GROUP, self.consumer, {self.key: ">"}, count=count, block=ms))

    def own_pending(self) -> list[Entry]:
        """The entries delivered to this consumer and not yet acknowledged."""
        return entries(self.client.xreadgroup(GROUP, self.consumer, {self.key: "0"}, count=1000))

    def all_items(self) -> list[tuple[str, Any]]:
        """Every entry in the stream that decodes, as `(id, item)`."""
        from .deadletters import decode

        found = []
        for entry_id, payload in entries(self.client.xrange(self.key)):
            with contextlib.suppress(ValueError):
                if payload is not None:
                    found.append((entry_id, decode(payload)))
        return found

    def workers_alive(self) -> int:
        """How many consumers of this queue have a fresh heartbeat."""
        return len(self.heartbeats.live())

    def waiting(self) -> int:
        """How many entries no consumer has taken yet."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(self.key)
        pipe.xpending(self.key, GROUP)
        length, pending = pipe.execute(raise_on_error=False)
        taken = int(pending["pending"]) if isinstance(pending, dict) else 0
        return max(int(length) - taken, 0)

    def claim_from_dead(self, max_deliveries: int, dead_letters: DeadLetters, limit: int) -> list[Entry]:
        """Claim up to `limit` pending entries of consumers whose heartbeat expired, parking instead
        those delivered `max_deliveries` times already; forget idle dead consumers.

        No more than `limit` (what this consumer will work on next): a claim counts a delivery,
        and an entry claimed but never tried (its claimer died on another one) must not move
        closer to being parked."""
        try:
            consumers = self.client.xinfo_consumers(self.key, GROUP)
        except Exception as exc:
            if group_lost(exc):
                self.create_group()
                return []
            raise
        others = [c for c in consumers if text(c["name"]) != self.consumer]
        if not others:
            return []
        taken: list[Entry] = []
        live = self.heartbeats.live()
        for c in others:
            dead = text(c["name"])
            if dead in live:
                continue
            if int(c["pending"]) == 0:
                if int(c["idle"]) > self.redelivery_timeout * 1000:
                    self.client.xgroup_delconsumer(self.key, GROUP, dead)
                continue
            pending = self.client.xpending_range(self.key, GROUP, min="-", max="+", count=1000, consumername=dead)
            # min_idle_time: a second worker racing for the same entries loses, because the
            # first claim resets their idle time (a dead consumer's entries are idle >= 3/8 rt).
            min_idle = int(self.redelivery_timeout * 250)
            ids: list[Any] = []
            for entry in pending:
                delivered = int(entry["times_delivered"])
                if delivered < max_deliveries:
                    ids.append(entry["message_id"])
                    continue
                reason = (
                    f"delivered {delivered} times (IZZATI_MAX_DELIVERIES={max_deliveries}) and never "
                    "acknowledged: each worker that took it died or was stopped"
                )
                dead_letters.park(text(entry["message_id"]), reason, dead, min_idle)
            ids = ids[: max(limit - len(taken), 0)]
            if not ids:  # parked, claimed by another worker first, or enough taken
                continue
            claimed = self.client.xclaim(self.key, GROUP, self.consumer, min_idle, ids)
            taken.extend(e for e in entries(claimed) if e[1] is not None)
        return taken
