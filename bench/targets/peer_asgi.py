"""The bare-ASGI target of `python -m bench peers` (P1 only): no framework at all, the floor of
serving a request in Python under uvicorn.

    python -m bench.targets.peer_asgi --port P [--processes N]

The app reads the whole body and sends it back with `Content-Type: application/json`: P1's body
is a JSON object, so the reply is P1's echo. uvicorn's defaults (uvloop and httptools when
installed), `--workers N`, no access log (like every target), log level warning. What it does
not do (parse the JSON, call a function in a thread, count metrics, a request id) is what a
framework adds: its rate is the ceiling of the P1 row.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.types import Receive, Scope, Send

JSON = (b"content-type", b"application/json")


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Echo the request body."""
    if scope["type"] != "http":
        return  # lifespan: nothing to set up (uvicorn goes on without it)
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(parts)
    headers = [JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--processes", type=int, default=1)
    opts = parser.parse_args()
    uvicorn.run(
        "bench.targets.peer_asgi:app",
        host="127.0.0.1",
        port=opts.port,
        workers=opts.processes,
        access_log=False,
        log_level="warning",
        lifespan="off",
    )


if __name__ == "__main__":
    main()
