"""A worker's metrics port: `GET /metrics` for Prometheus, on one thread whatever the connections.

prometheus-client's own server (`start_http_server`) serves each connection on a thread of its
own: 40 idle connections made 40 threads, with no bound. Here one event loop on one daemon thread
holds every connection, each for at most `_IDLE_SECONDS` until its request is read, and a scrape
is made on the loop's small default executor, so a slow collection holds no connection's reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable

__all__ = ["serve_metrics_port"]

_IDLE_SECONDS = 10.0  # a connection that has not sent its request by then is closed
_MAX_REQUEST_BYTES = 16 * 1024


def _reply(status: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


async def _serve(sock: socket.socket, exposition: Callable[[], bytes], content_type: str) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_IDLE_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
            method, target, *_ = head.split(b"\r\n", 1)[0].split(b" ") + [b"", b""]
            path = target.split(b"?", 1)[0]
            if method != b"GET":
                reply = _reply("405 Method Not Allowed", b'{"error": "method_not_allowed"}', "application/json")
            elif path not in (b"/", b"/metrics"):
                reply = _reply("404 Not Found", b'{"error": "not_found"}', "application/json")
            else:
                body = await asyncio.to_thread(exposition)
                reply = _reply("200 OK", body, content_type)
            writer.write(reply)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that sends nothing, too much, or goes: closed
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    server = await asyncio.start_server(answer, sock=sock, limit=_MAX_REQUEST_BYTES)
    async with server:
        await server.serve_forever()


def serve_metrics_port(host: str, port: int, exposition: Callable[[], bytes], content_type: str) -> None:
    """Listen on `host:port` now (an OSError if it cannot), and answer `GET /metrics` with
    `exposition()` from a daemon thread."""
    sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    thread = threading.Thread(
        target=asyncio.run, args=(_serve(sock, exposition, content_type),), name="izzati-metrics", daemon=True
    )
    thread.start()
