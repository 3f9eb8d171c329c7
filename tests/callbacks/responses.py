"""Callbacks that answer with Starlette responses of every kind, chosen by the `kind` field."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from starlette.responses import Response, StreamingResponse


def _chunks() -> Iterator[bytes]:
    for n in range(5):
        yield f"chunk {n}\n".encode()


async def _async_chunks() -> AsyncIterator[bytes]:
    for n in range(3):
        yield f"async {n}\n".encode()


def handle(text: dict[str, Any], data: list[Any]) -> Any:
    """stream, astream, headers (cookies twice, Location, a custom header, 201)."""
    kind = text.get("kind")
    if kind == "stream":
        return StreamingResponse(_chunks(), media_type="text/plain", headers={"X-Streamed": "yes"})
    if kind == "astream":
        return StreamingResponse(_async_chunks(), media_type="application/x-ndjson")
    response = Response(b"created", status_code=201, media_type="text/plain", headers={"Location": "/things/7"})
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    response.headers["X-Custom"] = "custom value"
    return response
