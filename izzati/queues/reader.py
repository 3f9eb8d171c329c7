"""What one `RedisQueue` instance holds while it takes items: the entries it read ahead, those it
returned and has not acknowledged yet, and the entries it takes over from dead consumers.

`Reader.step` is one round of `get()`; redis-py's errors pass through it, and `RedisQueue` retries
(setting `recover`, so the next round looks for entries delivered to it whose reply was lost).
"""

from __future__ import annotations

import collections
import time
from typing import Any

from ._stream import Consumer, Entry
from .deadletters import DeadLetters, decode

__all__ = ["NONE", "Reader"]

NONE = object()
"""No item (None is one)."""


class Reader:
    """The taking side of one queue instance (not thread-safe: `RedisQueue` holds its lock)."""

    def __init__(
        self, member: Consumer, dead_letters: DeadLetters, prefetch: int, max_deliveries: int, redelivery_timeout: float
    ) -> None:
        self.member = member
        self.dead_letters = dead_letters
        self.prefetch = prefetch
        self.max_deliveries = max_deliveries
        self.redelivery_timeout = redelivery_timeout
        self.buffer: collections.deque[Entry] = collections.deque()
        """Entries read and not yet returned."""
        self.unacked: list[str] = []
        """The ids of entries returned (or deleted under us) and not yet acknowledged."""
        self.recover = False
        """A reply may have been lost: look for entries delivered to this consumer first."""
        self.next_reclaim = 0.0
        self.traceparent: str | None = None
        """The traceparent of the item returned last (see izzati.tracing)."""

    def step(self, block: bool, deadline: float | None, socket_timeout: float) -> tuple[Any, bool]:
        """One round of `get()`: recover, reclaim, acknowledge what was returned (reading ahead in the
        same call), read if nothing is buffered; then the next item (or `NONE`) and whether any
        entry was parked."""
        if self.recover:
            self.recover_own()
        self.maybe_reclaim()
        if self.unacked:
            self.buffer.extend(self.ack_read(0 if self.buffer else self.prefetch))
        if not self.buffer:
            self.buffer.extend(self.member.read(self.prefetch, block, deadline, socket_timeout))
        return self.take()

    def take(self) -> tuple[Any, bool]:
        """The next buffered item that decodes (or `NONE`), parking those that do not; and
        whether it parked any. `get()` never raises for someone else's bad data."""
        parked = False
        while self.buffer:
            entry_id, payload = self.buffer[0]
            if payload is not None:
                try:
                    item = decode(payload)
                except ValueError as exc:
                    self.dead_letters.park(entry_id, f"undecodable: {exc}", self.member.consumer)
                    self.buffer.popleft()
                    parked = True
                    continue
            self.buffer.popleft()
            self.unacked.append(entry_id)  # a deleted entry is acknowledged with the others
            self.traceparent = getattr(payload, "traceparent", None)
            if payload is not None:
                return item, parked
        return NONE, parked

    def reject(self, reason: str) -> None:
        """Park the entries returned since the last acknowledgement as dead letters, with `reason`."""
        while self.unacked:
            self.dead_letters.park(self.unacked.pop(), reason, self.member.consumer)

    def ack_read(self, count: int) -> list[Entry]:
        """Acknowledge (and delete) the returned entries and read up to `count` more, in one call."""
        taken = self.member.ack_read(self.unacked, count)
        self.unacked.clear()
        return taken

    def recover_own(self) -> None:
        """After a lost reply, re-take entries delivered to this consumer that it never saw."""
        known = set(self.unacked) | {entry_id for entry_id, _ in self.buffer}
        for entry_id, payload in self.member.own_pending():
            if entry_id not in known and payload is not None:
                self.buffer.append((entry_id, payload))
        self.recover = False

    def maybe_reclaim(self) -> None:
        """Claim pending entries of consumers whose heartbeat expired; forget idle dead ones."""
        now = time.monotonic()
        if now < self.next_reclaim:
            return
        self.next_reclaim = now + self.redelivery_timeout / 4
        limit = self.prefetch - len(self.buffer)
        self.buffer.extend(self.member.claim_from_dead(self.max_deliveries, self.dead_letters, limit))
