"""Dead letters of a ``redis://`` queue: entries parked in ``{name}:dead`` instead of killing workers.

An entry is parked when it was delivered ``max_deliveries`` times without being acknowledged
(each time its worker died or was stopped while holding it), or when it is not an izzati item at
all (not JSON, or written by another producer). A parked entry keeps its original fields and
gains ``dead.id`` (its id in the queue), ``dead.reason``, ``dead.deliveries`` and ``dead.time``
(Unix milliseconds). Parking is one Lua script: the copy, the acknowledgement and the removal
from the queue happen together or not at all.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._stream import GROUP, text

if TYPE_CHECKING:
    import redis

__all__ = ["DeadLetter", "DeadLetters", "decode"]

logger = logging.getLogger("izzati.queue")

# KEYS: queue stream, dead stream. ARGV: group, id, reason, time (ms), holder, min idle (ms).
# Parks the entry only while `holder` still holds it, idle that long: a consumer that claimed it
# meanwhile keeps it. The delivery count is Redis's own.
_PARK = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[6], ARGV[2], ARGV[2], 1)
if #pending == 0 or pending[1][2] ~= ARGV[5] then return false end
local found = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if #found == 0 then return false end
local deliveries = tostring(pending[1][4])
local args = {'dead.id', ARGV[2], 'dead.reason', ARGV[3], 'dead.deliveries', deliveries, 'dead.time', ARGV[4]}
for _, value in ipairs(found[1][2]) do args[#args + 1] = value end
local parked = redis.call('XADD', KEYS[2], '*', unpack(args))
redis.call('XDEL', KEYS[1], ARGV[2])
return parked
"""
# KEYS: dead stream, queue stream. ARGV: the parked entry's id. Back to the queue as it came.
_RETRY = """
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return false end
local fields, args = found[1][2], {}
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 5) ~= 'dead.' then
    args[#args + 1] = fields[i]
    args[#args + 1] = fields[i + 1]
  end
end
if #args == 0 then args = {'d', 'null'} end
local queued = redis.call('XADD', KEYS[2], '*', unpack(args))
redis.call('XDEL', KEYS[1], ARGV[1])
return queued
"""


@dataclass(frozen=True)
class DeadLetter:
    """One parked entry: where it was, why it was parked, and what it held."""

    id: str
    """Its id in the dead-letter stream (what `retry` takes)."""
    queue_id: str
    reason: str
    deliveries: int
    time: float
    """When it was parked (Unix seconds)."""
    fields: dict[str, str]
    """The entry's own fields: an izzati item is `{"d": "<JSON>"}`."""

    def as_dict(self) -> dict[str, Any]:
        """The parked entry as JSON-ready data."""
        return {
            "id": self.id,
            "queue_id": self.queue_id,
            "reason": self.reason,
            "deliveries": self.deliveries,
            "time": self.time,
            "fields": self.fields,
        }


class DeadLetters:
    """The dead-letter stream of the queue `name` on `client`: park, list, retry, purge."""

    def __init__(self, client: redis.Redis, name: str) -> None:
        self.client = client
        self.name = name
        self.queue_key = f"{name}:stream"
        self.key = f"{name}:dead"

    def park(self, entry_id: str, reason: str, holder: str, min_idle_ms: int = 0) -> bool:
        """Move an entry that `holder` holds (idle `min_idle_ms` or longer) here, acknowledged and
        removed from the queue; False when it is gone or held by another consumer now."""
        now_ms = str(int(time.time() * 1000))
        args = [GROUP, entry_id, reason, now_ms, holder, str(min_idle_ms)]
        parked = self.client.eval(_PARK, 2, self.queue_key, self.key, *args)
        if parked:
            # logged once, by the one consumer whose script moved it
            logger.warning("queue %r: parked entry %s in %s: %s", self.name, entry_id, self.key, reason)
        return bool(parked)

    def count(self) -> int:
        """How many entries are parked."""
        return int(self.client.xlen(self.key))

    def entries(self, count: int = 100) -> list[DeadLetter]:
        """The oldest `count` parked entries."""
        return [_letter(entry_id, fields or {}) for entry_id, fields in self.client.xrange(self.key, count=count) or []]

    def retry(self, ids: list[str] | None = None) -> list[str]:
        """Put parked entries back on the queue (all of them when `ids` is None); their new ids."""
        if ids is None:
            ids = [text(entry_id) for entry_id, _ in self.client.xrange(self.key) or []]
        queued = []
        for entry_id in ids:
            new_id = self.client.eval(_RETRY, 2, self.key, self.queue_key, entry_id)
            if new_id:
                queued.append(text(new_id))
        return queued

    def purge(self) -> int:
        """Delete every parked entry; how many there were."""
        pipe = self.client.pipeline(transaction=True)
        pipe.xlen(self.key)
        pipe.delete(self.key)
        count, _ = pipe.execute()
        return int(count)


def _letter(entry_id: Any, raw: dict[Any, Any]) -> DeadLetter:
    fields = {text(k): text(v) for k, v in raw.items()}
    meta = {k: fields.pop(k) for k in list(fields) if k.startswith("dead.")}
    return DeadLetter(
        id=text(entry_id),
        queue_id=meta.get("dead.id", ""),
        reason=meta.get("dead.reason", ""),
        deliveries=int(meta.get("dead.deliveries", "0") or 0),
        time=int(meta.get("dead.time", "0") or 0) / 1000,
        fields=fields,
    )


def decode(payload: Any) -> Any:
    """An izzati item from an entry's payload; ValueError when it is not one."""
    if isinstance(payload, dict):
        names = ", ".join(sorted(text(k) for k in payload)) or "none"
        raise ValueError(f"not an izzati item (no 'd' field; fields: {names})")
    try:
        return json.loads(payload)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
