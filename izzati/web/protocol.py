"""uvicorn's httptools protocol with a bound on how long a client may take to send its headers,
and izzati's JSON body on the errors uvicorn itself answers.

uvicorn bounds idle keep-alive connections and izzati bounds body reads, but a client that
connects and then sends nothing, or its headers a byte at a time (slowloris), would hold a
connection forever. This protocol answers 408 and closes such a connection. uvicorn's own
replies to malformed HTTP (400) and to a request over the connection limit (503) are plain text;
here they are JSON like every other error.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..defaults import MAX_HEADER_BYTES

__all__ = ["header_timeout_protocol"]


def _raw_error(status: int, reason: str, code: str, detail: str) -> bytes:
    """A whole HTTP/1.1 error response with izzati's JSON body, closing the connection."""
    body = json.dumps({"error": code, "detail": detail}, separators=(",", ":")).encode()
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n"
    return (head + f"content-length: {len(body)}\r\n\r\n").encode() + body


def header_timeout_protocol(timeout: float, max_header_bytes: int = MAX_HEADER_BYTES) -> type[asyncio.Protocol] | None:
    """The protocol class to pass as uvicorn's `http=`; None where httptools is not installed.

    It also stops reading headers past `max_header_bytes` (httptools would buffer them all).
    """
    try:
        from uvicorn.protocols.http.flow_control import service_unavailable
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return None

    from ..exceptions import ServiceUnavailable
    from .responses import error_response

    over_limit: Any = error_response(
        ServiceUnavailable("the server is at its connection limit (IZZATI_MAX_CONNECTIONS); try again shortly"),
        headers={"Connection": "close", "Retry-After": "1"},
    )
    malformed_reply = _raw_error(400, "Bad Request", "bad_request", "the request is not valid HTTP")

    reply = _raw_error(
        408, "Request Timeout", "request_timeout", f"the request headers did not arrive within {timeout:g} s"
    )
    too_large_reply = _raw_error(
        431,
        "Request Header Fields Too Large",
        "headers_too_large",
        f"request headers are over the limit of {max_header_bytes} bytes",
    )
    # the request line and a little slack come on top of the headers the gate counts exactly
    header_budget = max_header_bytes + 8 * 1024

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        """HttpToolsProtocol that closes a connection whose request headers are too slow."""

        _header_timer: asyncio.TimerHandle | None = None
        _header_bytes = 0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            # counted after parsing: a chunk that completes the headers may carry body bytes too
            if self._header_timer is not None and not self.transport.is_closing():
                self._header_bytes += len(data)
                if self._header_bytes > header_budget:  # the headers are still not complete
                    self._disarm()
                    self.transport.write(too_large_reply)
                    self.transport.close()

        def send_400_response(self, msg: str) -> None:
            self._disarm()
            self.transport.write(malformed_reply)
            self.transport.close()

        def _unsupported_upgrade_warning(self) -> None:
            pass  # a WebSocket handshake is an ordinary request here (ws="none"): nothing to warn about

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            # uvicorn picks its plain-text 503 app for a request over the connection limit
            super()._start_asgi_task(cycle, over_limit if app is service_unavailable else app)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:
                self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            self._header_bytes = 0
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._header_timer = self.loop.call_later(timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            cycle: Any = getattr(self, "cycle", None)
            if self.transport.is_closing():
                return
            if cycle is None or cycle.response_complete:  # no response of ours is being written
                self.transport.write(reply)
            self.transport.close()

    return HeaderTimeoutProtocol
