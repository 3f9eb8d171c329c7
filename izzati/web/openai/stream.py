"""A chat callback's answer as the Server-Sent Events of a streamed reply, and as one collected
text: the same walk through a `Cutter` for both, for plain and async generators.

The first piece is asked for before anything is sent, so a callback that fails at once gets a
proper error reply (its status); one that fails later ends the stream with an error event.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

from ...jobs import Hangup
from .pieces import Cutter, adeltas, deltas

__all__ = ["Format", "events", "aevents", "collect", "acollect"]

logger = logging.getLogger("izzati")


class Format(Protocol):
    """How one endpoint writes a streamed answer (chat chunks, or Responses events)."""

    def start(self) -> bytes: ...
    def delta(self, text: str) -> bytes: ...
    def end(self, cutter: Cutter) -> bytes: ...
    def error(self, exc: Exception) -> bytes: ...


def events(result: Any, cutter: Cutter, fmt: Format) -> Iterator[bytes]:
    """The events of a plain answer (run in a pool thread, one step per item)."""
    texts = deltas(result, cutter)
    try:
        first = next(texts, None)  # raises before anything is sent: the reply is the error
        yield fmt.start()
        try:
            if first is not None:
                yield fmt.delta(first)
            for text in texts:
                yield fmt.delta(text)
        except Exception as exc:
            yield fmt.error(exc)
            return
        yield fmt.end(cutter)
    finally:
        texts.close()  # closes the callback's generator (e.g. the client hung up)


async def aevents(result: Any, cutter: Cutter, fmt: Format) -> AsyncIterator[bytes]:
    """`events` for an async generator's answer."""
    texts = adeltas(result, cutter)
    try:
        first = await anext(texts, None)
        yield fmt.start()
        try:
            if first is not None:
                yield fmt.delta(first)
            async for text in texts:
                yield fmt.delta(text)
        except Exception as exc:
            yield fmt.error(exc)
            return
        yield fmt.end(cutter)
    finally:
        await texts.aclose()


def collect(result: Any, cutter: Cutter, hangup: Hangup) -> Cutter:
    """Walk a plain answer to its end (in a pool thread); stop early when the client hung up."""
    texts = deltas(result, cutter)
    try:
        for _ in texts:
            if hangup.is_set():
                break
    finally:
        texts.close()
    return cutter


async def acollect(result: Any, cutter: Cutter) -> Cutter:
    """Walk an async answer to its end (a hang-up cancels the task that awaits this)."""
    texts = adeltas(result, cutter)
    try:
        async for _ in texts:
            pass
    finally:
        await texts.aclose()
    return cutter
