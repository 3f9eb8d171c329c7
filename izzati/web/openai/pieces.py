"""A chat callback's answer as text deltas: `max_tokens` and `stop` enforced, `Usage` picked out.

The callback yields pieces (one token each); `Cutter` turns them into the text to send, holding
back a tail that may be the start of a stop string, and says why the answer ended. `deltas` and
`adeltas` walk a plain or an async generator through a cutter and close it when they end, early
or not (a hang-up closes them, and so the callback's generator).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Generator, Iterable, Iterator
from typing import Any

from ...chat import Usage
from ...exceptions import CallbackError

__all__ = ["Cutter", "as_pieces", "deltas", "adeltas", "is_async_pieces"]


class Cutter:
    """Counts pieces against `max_tokens`, cuts at the first `stop` string, keeps the `Usage`."""

    def __init__(self, max_tokens: int | None, stop: Iterable[str]) -> None:
        self.max_tokens = max_tokens
        self.stop = tuple(s for s in stop if s)
        self.hold = max((len(s) for s in self.stop), default=1) - 1
        self.pending = ""
        self.count = 0
        self.finish_reason = "stop"
        self.done = False
        self.usage: Usage | None = None
        self.text: list[str] = []

    def feed(self, piece: Any) -> str:
        """The text that may be sent now, after `piece`; sets `done` when the answer ends here."""
        if isinstance(piece, Usage):
            self.usage = piece
            return ""
        if not isinstance(piece, str):
            raise CallbackError(f"a chat callback yielded a {type(piece).__name__}; yield str pieces (or a Usage)")
        self.count += 1
        if not self.stop:
            out = piece
        else:
            self.pending += piece
            cut = min((i for s in self.stop if (i := self.pending.find(s)) >= 0), default=-1)
            if cut >= 0:
                out, self.pending, self.done = self.pending[:cut], "", True
                return self._sent(out)
            keep = len(self.pending) - self.hold
            out, self.pending = (self.pending[:keep], self.pending[keep:]) if keep > 0 else ("", self.pending)
        if self.max_tokens is not None and self.count >= self.max_tokens:
            out += self.pending
            self.pending, self.done, self.finish_reason = "", True, "length"
        return self._sent(out)

    def finish(self) -> str:
        """The held-back text, once the callback has no more pieces."""
        out, self.pending = self.pending, ""
        return self._sent(out)

    def _sent(self, out: str) -> str:
        if out:
            self.text.append(out)
        return out

    @property
    def answer(self) -> str:
        """All the text sent so far."""
        return "".join(self.text)


def is_async_pieces(result: Any) -> bool:
    """Whether a chat callback's answer is an async generator (else pieces to iterate)."""
    return inspect.isasyncgen(result)


def as_pieces(result: Any) -> Iterator[Any]:
    """A chat callback's plain answer as an iterator of pieces: a `str` is one piece."""
    if isinstance(result, str):
        return iter((result,))
    if isinstance(result, Iterable) and not isinstance(result, (bytes, dict)):
        return iter(result)
    raise CallbackError(f"a chat callback returned a {type(result).__name__}; return a str or yield str pieces")


def deltas(result: Any, cutter: Cutter) -> Generator[str, None, None]:
    """The text to send from a plain answer, piece by piece (empty deltas skipped)."""
    pieces = as_pieces(result)
    try:
        for piece in pieces:
            out = cutter.feed(piece)
            if out:
                yield out
            if cutter.done:
                return
        tail = cutter.finish()
        if tail:
            yield tail
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()


async def adeltas(result: Any, cutter: Cutter) -> AsyncGenerator[str, None]:
    """`deltas` for an async generator's answer."""
    try:
        async for piece in result:
            out = cutter.feed(piece)
            if out:
                yield out
            if cutter.done:
                return
        tail = cutter.finish()
        if tail:
            yield tail
    finally:
        await result.aclose()
