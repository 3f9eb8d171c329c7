"""Streamed replies: a callback that yields (a generator, sync or async) sends each item as it is
made.

- `Accept: text/event-stream` gets Server-Sent Events: one `data: <JSON>` event per item.
- Otherwise JSON items go as NDJSON (`application/x-ndjson`, one JSON text per line) and `bytes`
  items as raw chunks (`application/octet-stream`); the first item decides which.
- Each item is sent before the next is asked for, and sending waits while the client reads slowly
  (uvicorn's flow control): a slow reader holds the generator back instead of filling memory.
- When the client hangs up, the generator is closed (`GeneratorExit` at its `yield`) and
  `izzati.cancelled()` turns true for code that runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..encoding import encode_json
from ..exceptions import HTTPError
from ..invoker import ThreadRunner
from ..jobs import Hangup
from .producers import END as _END
from .producers import LARGE as _LARGE
from .producers import AsyncProducer, Producer, weight

__all__ = ["ItemStream", "is_stream", "wants_events"]

logger = logging.getLogger("izzati")


def is_stream(result: Any) -> bool:
    """Whether a callback's return value is a stream of items (a generator, sync or async)."""
    return inspect.isgenerator(result) or inspect.isasyncgen(result)


def wants_events(scope: Scope) -> bool:
    """Whether the request asks for Server-Sent Events (`Accept: text/event-stream`)."""
    return any(key == b"accept" and b"text/event-stream" in value for key, value in scope["headers"])


class ItemStream:
    """The ASGI reply that streams a generator's items.

    Arguments:
        items: the generator the callback returned.
        pool: where a plain generator's steps run (never on the event loop).
        gone: set when the client hangs up; `izzati.cancelled()` reads it.
        events: send Server-Sent Events.
        on_error: the reply when the generator raises before its first item (after it, the status
            is sent: the connection is closed, so the client sees an unfinished stream).
        media: the items are ready-made `bytes` of this media type, sent as they are (the OpenAI
            endpoints' events).
    """

    def __init__(
        self,
        items: Any,
        pool: ThreadRunner,
        gone: Hangup,
        *,
        events: bool,
        on_error: Callable[[Exception], ASGIApp],
        media: bytes | None = None,
    ) -> None:
        self.items = items
        self.pool = pool
        self.gone = gone
        self.events = events
        self.on_error = on_error
        self.media = media
        self._step: Awaitable[Any] | None = None
        self._producer: Producer | None = None
        self._async: AsyncProducer | None = None

    async def _next(self) -> list[Any]:
        """The items made since the last call (at least one; `_END` last when the stream ended)."""
        if inspect.isasyncgen(self.items):
            if self._async is None:
                self._async = AsyncProducer(self.items)
            return await self._async.take()
        if self._producer is None:
            self._producer = Producer(self.items)
            self._step = asyncio.ensure_future(self.pool.run(self._producer.run))
        return await self._producer.take()

    async def _close(self) -> None:
        with contextlib.suppress(BaseException):
            if inspect.isasyncgen(self.items):
                if self._async is not None:
                    await self._async.stop()
                await self.items.aclose()
                return
            if self._producer is not None:
                self._producer.stop()
                assert self._step is not None
                await self._step  # the producer closes the generator in its own thread
            else:
                await self.pool.run(self.items.close)

    def _encode(self, item: Any, raw: bool) -> bytes:
        if self.events:
            return b"data: " + encode_json(item) + b"\n\n"
        if raw:
            if not isinstance(item, (bytes, bytearray, memoryview)):
                raise TypeError(f"a stream that began with bytes yielded a {type(item).__name__}")
            return bytes(item)
        return encode_json(item) + b"\n"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.current_task()
        assert streaming is not None

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.gone.set()
            streaming.cancel()

        watcher = asyncio.create_task(watch())
        try:
            await self._stream(scope, receive, send)
        except asyncio.CancelledError:
            if not self.gone.is_set():
                raise  # not a hang-up: the server is stopping
        finally:
            watcher.cancel()
            await self._close()

    def _error_chunk(self, exc: Exception, raw: bool) -> bytes:
        """What tells the client that the stream ends early: an `error` event, or an error line
        (nothing fits in a stream of raw bytes)."""
        error = {"error": getattr(exc, "code", "callback_failed"), "detail": getattr(exc, "detail", str(exc))}
        if self.events:
            return b"event: error\ndata: " + encode_json(error) + b"\n\n"
        return b"" if raw else encode_json(error) + b"\n"

    async def _send_batch(self, send: Send, items: list[Any], raw: bool) -> bool:
        """Send the items; False when one cannot be sent: those before it go, then an error."""
        small: list[bytes] = []
        sendable = True
        for item in items:
            try:
                chunk = self._encode(item, raw)
            except (HTTPError, TypeError, ValueError) as exc:
                logger.error("a streamed item cannot be sent (%s): the stream ends here", exc)
                chunk, sendable = self._error_chunk(exc, raw), False
            if len(chunk) < _LARGE:
                small.append(chunk)
            else:
                if small:
                    await send({"type": "http.response.body", "body": b"".join(small), "more_body": True})
                    small = []
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if not sendable:
                break
        if small:
            await send({"type": "http.response.body", "body": b"".join(small), "more_body": True})
        return sendable

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            batch = await self._next()
        except Exception as exc:  # nothing is sent yet: the reply is the error
            await self.on_error(exc)(scope, receive, send)
            return
        first = batch[0]
        raw = self.media is not None or (not self.events and isinstance(first, (bytes, bytearray, memoryview)))
        media = self.media or (
            b"text/event-stream" if self.events else b"application/octet-stream" if raw else b"application/x-ndjson"
        )
        headers = [(b"content-type", media), (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        start: Message = {"type": "http.response.start", "status": 200, "headers": headers}
        await send(start)
        while True:
            # what the generator made meanwhile goes in one message (small items) or one message
            # each (large ones, not copied again): no item waits for another
            ended = batch[-1] is _END
            if not await self._send_batch(send, batch[:-1] if ended else batch, raw):
                break  # the status is sent: the stream ends with the error, and the log says why
            producer = self._producer or self._async
            if producer is not None:
                producer.sent(sum(weight(item) for item in batch))
            if ended:
                break
            batch = await self._next()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
