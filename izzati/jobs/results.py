"""What a job keeps of its callback's return value."""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable
from typing import Any

from ..encoding import encode_json
from .model import ResultMeta, StoredResult

__all__ = ["stored_result"]


def _meta(media_type: str) -> ResultMeta:
    return {"status_code": 200, "media_type": media_type, "headers": []}


def _seen(item: Any, on_item: Callable[[Any], None] | None) -> Any:
    if on_item is not None:
        on_item(item)
    return item


async def _collect(items: Any, on_item: Callable[[Any], None] | None) -> list[Any]:
    try:
        return [_seen(item, on_item) async for item in items]
    finally:
        await items.aclose()  # `on_item` raised (the job was cancelled): the generator's finally runs now


def stored_result(result: Any, on_item: Callable[[Any], None] | None = None) -> StoredResult:
    """What to keep of a callback's return value: the reply the synchronous call would send; for
    a generator, the list of what it yields (each item also to `on_item`, as it comes; when
    `on_item` raises, the generator is closed and the exception raised)."""
    if inspect.isgenerator(result):
        generator = result
        try:
            result = [_seen(item, on_item) for item in generator]
        finally:
            generator.close()
    elif inspect.isasyncgen(result):
        result = asyncio.run(_collect(result, on_item))
    if isinstance(result, (bytes, bytearray, memoryview)):
        return StoredResult(_meta("application/octet-stream"), bytes(result))
    if "starlette.responses" in sys.modules:
        # a callback that returns a Response (file_return included) has loaded Starlette already,
        # so this import costs a worker whose callbacks return JSON nothing
        from ..web.responses import stored_response

        stored = stored_response(result)
        if stored is not None:
            return stored
    return StoredResult(_meta("application/json"), encode_json(result))
