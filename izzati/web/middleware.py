"""The middleware every HTTP request passes: request id, header limit, API key, one access-log line."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import random
import re
import time
from collections.abc import Callable, Collection, Mapping

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import tracing
from ..defaults import MAX_HEADER_BYTES
from ..exceptions import HeadersTooLarge, HTTPError, Unauthorized
from ..metrics import CALLBACK_SECONDS, RECORDER, route_of
from .accesslog import write_access_line
from .responses import error_response

__all__ = ["Gate", "PUBLIC_PATHS", "wants_html"]

# Probes must answer without a key; the try-it page and its script carry no data and are what
# asks a browser user for the key.
PUBLIC_PATHS = frozenset({"/health", "/ready", "/izzati.js"})
_TRACE_HEADERS = (b"traceparent", b"tracestate")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def wants_html(accept: str) -> bool:
    """Whether an `Accept` header asks for HTML (a browser navigating), not an API reply."""
    for item in accept.split(","):
        media_type, *params = (part.strip() for part in item.split(";"))
        if media_type.lower() not in ("text/html", "application/xhtml+xml"):
            continue
        quality = next((p.partition("=")[2] for p in params if p.lower().startswith("q=")), "1")
        try:
            if float(quality) > 0:
                return True
        except ValueError:
            return True
    return False


def _unfinished(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):  # uvicorn cancels what runs past the grace period
        return "the server stopped before the request finished (its shutdown grace period ended)"
    return "the server failed to handle the request"


class Gate:
    """Wraps the app: echoes or makes an `X-Request-ID`, bounds header size, checks the API key
    (constant-time), and logs one line per request.

    Arguments:
        app: the ASGI app behind the gate.
        api_key: when set, every path except the probes (and the try-it page for browsers)
            needs `Authorization: Bearer <api_key>`.
        max_header_bytes: the largest total size of the request headers (431 beyond).
        public_paths: paths served without the key.
        access_log: write the access-log line.
        metrics: count the request, its status and duration (`izzati.metrics`).
        refusals: path prefix → the 401 of the paths under it (the OpenAI endpoints answer in
            OpenAI's shape); other paths get izzati's.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_key: str | None = None,
        max_header_bytes: int = MAX_HEADER_BYTES,
        public_paths: Collection[str] = PUBLIC_PATHS,
        access_log: bool = True,
        metrics: bool = True,
        refusals: Mapping[str, Callable[[], Response]] | None = None,
    ) -> None:
        self.app = app
        self.expected = api_key.encode() if api_key else None
        self.max_header_bytes = max_header_bytes
        self.public_paths = frozenset(public_paths)
        self.log = access_log
        self.recorder = RECORDER if metrics else None
        self.refusals = dict(refusals or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ""
        authorization = b""
        accept = b""
        size = 0
        for key, value in scope["headers"]:
            size += len(key) + len(value) + 4
            if key == b"x-request-id":
                candidate = value.decode("latin-1")
                if _REQUEST_ID.fullmatch(candidate):
                    request_id = candidate
            elif key == b"authorization":
                authorization = value
            elif key == b"accept":
                accept = value
        if not request_id:
            # not uuid4: os.urandom releases the GIL on the event loop, and a callback thread grabs
            # it (measured: -14% req/s); request ids need to be unique, not unguessable
            request_id = f"{random.getrandbits(128):032x}"
        id_header = (b"x-request-id", request_id.encode())
        status = 0
        recorder = self.recorder
        if recorder is not None:
            recorder.begin()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            if size > self.max_header_bytes:
                error = HeadersTooLarge(f"request headers are over the limit of {self.max_header_bytes} bytes")
                await error_response(error)(scope, receive, send_with_id)
            elif self.expected is not None and not self._allowed(scope, authorization, accept):
                await self._refusal(scope["path"])(scope, receive, send_with_id)
            elif tracing.ACTIVE:
                await self._traced(scope, receive, send_with_id, lambda: status)
            else:
                await self.app(scope, receive, send_with_id)
        except BaseException as exc:
            if not status:  # nothing sent yet: answer in JSON, not with uvicorn's plain-text 500
                status = 500
                with contextlib.suppress(Exception):
                    await error_response(HTTPError(_unfinished(exc)))(scope, receive, send_with_id)
            raise
        finally:
            seconds = time.perf_counter() - started
            if recorder is not None:
                callback = scope.get(CALLBACK_SECONDS)
                recorder.request(route_of(scope["path"]), scope["method"], status or 499, seconds, callback)
            if self.log:
                client = scope.get("client")
                # no response: the client went away first (nginx's 499)
                write_access_line(
                    scope["method"], scope["path"], status or 499, seconds, request_id, client[0] if client else "-"
                )

    async def _traced(self, scope: Scope, receive: Receive, send: Send, status: Callable[[], int]) -> None:
        """Serve the request inside its server span (a child of the client's `traceparent`)."""
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _TRACE_HEADERS}
        route = route_of(scope["path"])
        attributes = {"http.request.method": scope["method"], "url.path": scope["path"], "http.route": route}
        with tracing.span(f"{scope['method']} {route}", "SERVER", attributes, carrier=carrier) as current:
            try:
                await self.app(scope, receive, send)
            finally:
                current.set_attribute("http.response.status_code", status() or 499)
                if status() >= 500 or not status():
                    tracing.failed(current)

    def _refusal(self, path: str) -> Response:
        for prefix, refusal in self.refusals.items():
            if path.startswith(prefix):
                return refusal()
        return error_response(
            Unauthorized("this service needs an API key: send Authorization: Bearer <key>"),
            headers={"WWW-Authenticate": "Bearer"},
        )

    def _allowed(self, scope: Scope, authorization: bytes, accept: bytes) -> bool:
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # mounted under a prefix
            path = path[len(root) :] or "/"
        if path in self.public_paths:
            return True
        if path == "/" and scope["method"] in ("GET", "HEAD") and wants_html(accept.decode("latin-1")):
            return True  # the try-it page, which asks the user for the key
        assert self.expected is not None
        scheme, _, token = authorization.strip().partition(b" ")
        # the scheme is case-insensitive (RFC 7235); the key is compared in constant time
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.expected)
