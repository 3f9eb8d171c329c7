"""The access log: one line per request, cheap enough to leave on.

The line goes to the `izzati.access` logger. Under `Backend.run()` / `izzati run` that logger has
one `AccessHandler` (see `web.server.log_config`), and the middleware hands it the finished line
directly: the handler's formatter is applied once, at the first line (the level prefix), and the
lines are written together at most `FLUSH_SECONDS` after the first of them (sooner when
`FLUSH_LINES` are waiting, and at exit), as nginx's `access_log ... buffer= flush=` does. Going
through `logging` (a LogRecord, the handler's lock, the formatter, one write per line) cost most of
the time of a small request; a write at every turn of the event loop still cost 30 µs a request
(its system call lets a callback thread take the GIL from the event loop): `python -m bench
accesslog`. Any other setup of the logger (a handler of your own, a level, a
`logging.config` of your own) gets every line through `logging` as usual.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from typing import TextIO

__all__ = ["AccessHandler", "access_log", "write_access_line", "flush", "FLUSH_SECONDS", "FLUSH_LINES"]

access_log = logging.getLogger("izzati.access")

_MARK = "\x00"  # stands for the message when the formatter is applied once

FLUSH_SECONDS = 0.05
"""The longest a line waits in the buffer before it is written."""

FLUSH_LINES = 512
"""Lines waiting that are written at once, whatever the time."""


class AccessHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose lines the middleware may also hand over already formatted: those
    are buffered and written once per turn of the event loop (and at exit)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._prefix: str | None = None
        self._pending: list[str] = []
        self._pending_lock = threading.Lock()  # several event loops in one process (tests, threads)
        atexit.register(self.write_pending)

    def prefix(self) -> str | None:
        """What the formatter puts before the message (None when it puts anything after it, or
        something that changes from line to line, such as a time: then lines go through logging)."""
        if self._prefix is None:
            record = logging.LogRecord(access_log.name, logging.INFO, __file__, 0, _MARK, None, None)
            one, two = self.format(record), self.format(record)
            self._prefix = one[:-1] if one == two and one.endswith(_MARK) and one.count(_MARK) == 1 else ""
        return self._prefix or None

    def add(self, line: str) -> None:
        """Buffer one formatted line; the buffer is written `FLUSH_SECONDS` after its first line,
        or at once when it holds `FLUSH_LINES`."""
        with self._pending_lock:
            self._pending.append(line)
            waiting = len(self._pending)
        if waiting == 1:
            try:
                asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.write_pending)
            except RuntimeError:  # no event loop: at once
                self.write_pending()
        elif waiting >= FLUSH_LINES:
            self.write_pending()  # the timer finds the buffer empty (or the next lines) later

    def write_pending(self) -> None:
        """Write the buffered lines in one go."""
        with self._pending_lock:
            lines, self._pending = self._pending, []
        if not lines:
            return
        with self.lock:  # type: ignore[union-attr]  # the handler's own lock, taken by emit() too
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.flush()
            except Exception:  # a closed stream at exit: logging's policy, never the request's problem
                self.handleError(logging.LogRecord(access_log.name, logging.INFO, __file__, 0, lines[0], None, None))


def flush() -> None:
    """Write the buffered lines now: the app does it at its lifespan's end, since a server process
    ends without running `atexit` (uvicorn re-raises the stopping signal; a forked one `_exit`s)."""
    for handler in access_log.handlers:
        if isinstance(handler, AccessHandler):
            handler.write_pending()


def _fast_handler() -> AccessHandler | None:
    # checked per request (a few attribute reads): a handler added or a level set later is honoured
    handlers = access_log.handlers
    if len(handlers) != 1 or access_log.propagate or access_log.disabled:
        return None
    handler = handlers[0]
    if type(handler) is not AccessHandler or not access_log.isEnabledFor(logging.INFO):
        return None
    if handler.level > logging.INFO or handler.filters or access_log.filters:
        return None
    return handler


def write_access_line(method: str, path: str, status: int, seconds: float, request_id: str, client: str) -> None:
    """Log one request: `method=POST path=/ status=200 duration_ms=1.2 request_id=... client=...`."""
    handler = _fast_handler()
    prefix = handler.prefix() if handler is not None else None
    if handler is None or prefix is None:
        access_log.info(
            "method=%s path=%s status=%d duration_ms=%.1f request_id=%s client=%s",
            method,
            path,
            status,
            seconds * 1000,
            request_id,
            client,
        )
        return
    handler.add(
        f"{prefix}method={method} path={path} status={status} duration_ms={seconds * 1000:.1f}"
        f" request_id={request_id} client={client}"
    )
