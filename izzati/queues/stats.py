"""What a Redis queue holds now, for metrics and autoscaling: its length, its consumer group's lag
and pending count, and the age of the oldest item no worker has taken."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from ._stream import GROUP, text

if TYPE_CHECKING:
    import redis

__all__ = ["QueueStats", "stream_stats"]


class QueueStats(TypedDict):
    """A snapshot of one queue (items are deleted when acknowledged, so length = lag + pending)."""

    length: int
    """Entries in the stream: waiting, or taken and not yet acknowledged."""
    lag: int
    """Entries no worker has taken yet (the consumer group's lag): the backlog."""
    pending: int
    """Entries taken by workers and not yet acknowledged: the work in hand."""
    oldest_age: float
    """Seconds the oldest entry no worker has taken has waited (0 when none waits)."""


def _field(group: dict[Any, Any], name: str) -> Any:
    return group.get(name, group.get(name.encode()))


def stream_stats(client: redis.Redis, key: str) -> QueueStats:
    """A snapshot of the stream `key` and izzati's consumer group on it (Redis clock for ages)."""
    import redis as redis_py

    pipe = client.pipeline(transaction=False)
    pipe.xlen(key)
    pipe.xinfo_groups(key)
    pipe.time()
    length, groups, now = pipe.execute(raise_on_error=False)
    if isinstance(length, redis_py.ResponseError):
        raise length
    if isinstance(groups, Exception):  # no stream yet: nothing was ever put
        return {"length": int(length), "lag": int(length), "pending": 0, "oldest_age": 0.0}
    group = next((g for g in groups if text(_field(g, "name")) == GROUP), None)
    if group is None:
        return {"length": int(length), "lag": int(length), "pending": 0, "oldest_age": 0.0}
    pending = int(_field(group, "pending") or 0)
    lag = _field(group, "lag")  # Redis 7+; None when Redis cannot tell (after deletions it can)
    waiting = max(int(length) - pending, 0) if lag is None else int(lag)
    oldest_age = 0.0
    if waiting:
        last = text(_field(group, "last-delivered-id"))
        first = client.xrange(key, min=f"({last}", max="+", count=1)
        if first:
            born_ms = int(text(first[0][0]).split("-")[0])
            now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
            oldest_age = max(0.0, (now_ms - born_ms) / 1000)
    return {"length": int(length), "lag": waiting, "pending": pending, "oldest_age": oldest_age}
