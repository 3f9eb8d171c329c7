"""Streaming targets: the same generator served by izzati (a callback that yields) and by a
hand-written FastAPI endpoint (`StreamingResponse`), NDJSON both.

    python -m bench.targets.stream_target --kind izzati|fastapi --port P [--async]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Form
from fastapi.responses import StreamingResponse


def items(n: int) -> Iterator[dict[str, int]]:
    for i in range(n):
        yield {"n": i}


async def async_items(n: int) -> AsyncIterator[dict[str, int]]:
    for i in range(n):
        yield {"n": i}
        if i % 64 == 0:
            await asyncio.sleep(0)


def izzati_app(use_async: bool | None) -> Any:
    from izzati import Backend

    if use_async is None:  # the slow-reader run: `n` chunks of 1 MiB

        def chunks(text: dict[str, Any], data: list[Any]) -> Iterator[bytes]:
            block = b"x" * (1024 * 1024)
            for _ in range(int(text["n"])):
                yield block

        return Backend(chunks, access_log=False)

    if use_async:

        async def stream_async(text: dict[str, Any], data: list[Any]) -> AsyncIterator[dict[str, int]]:
            async for item in async_items(int(text["n"])):
                yield item

        return Backend(stream_async, access_log=False)

    def stream(text: dict[str, Any], data: list[Any]) -> Iterator[dict[str, int]]:
        return items(int(text["n"]))

    return Backend(stream, access_log=False)


def fastapi_app(use_async: bool) -> Any:
    # FastAPI resolves the string annotations (postponed) in this module's globals
    app = FastAPI()

    if use_async:

        @app.post("/")
        async def stream_async(n: Annotated[str, Form()]) -> StreamingResponse:
            async def lines() -> AsyncIterator[bytes]:
                async for item in async_items(int(n)):
                    yield json.dumps(item, separators=(",", ":")).encode() + b"\n"

            return StreamingResponse(lines(), media_type="application/x-ndjson")

    else:

        @app.post("/")
        def stream(n: Annotated[str, Form()]) -> StreamingResponse:
            lines = (json.dumps(item, separators=(",", ":")).encode() + b"\n" for item in items(int(n)))
            return StreamingResponse(lines, media_type="application/x-ndjson")

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=["izzati", "fastapi"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--async", dest="use_async", action="store_true")
    parser.add_argument("--chunks", action="store_true", help="izzati only: a stream of 1 MiB bytes chunks")
    opts = parser.parse_args()
    if opts.kind == "izzati":
        izzati_app(None if opts.chunks else opts.use_async).run("127.0.0.1", opts.port, log_level="warning")
    else:
        uvicorn.run(
            fastapi_app(opts.use_async), host="127.0.0.1", port=opts.port, log_level="warning", access_log=False
        )


if __name__ == "__main__":
    main()
