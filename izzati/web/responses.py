"""Turning what a callback returns, or an error, into an HTTP response; `file_return`."""

from __future__ import annotations

import asyncio
import os
import tempfile
import traceback
from http import HTTPStatus
from typing import IO, Any

from starlette.background import BackgroundTask
from starlette.responses import FileResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..encoding import encode_json
from ..exceptions import HTTPError
from ..jobs.model import ResultMeta, StoredResult

__all__ = [
    "JSON_MEDIA_TYPE",
    "RawResponse",
    "FileReturn",
    "file_return",
    "json_response",
    "error_response",
    "render",
    "error_code",
    "stored_response",
    "format_traceback",
]

# The original clients compare the Content-Type header string exactly: no "; charset".
JSON_MEDIA_TYPE = "application/json"


def json_response(value: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with `Content-Type: application/json` exactly."""
    return Response(encode_json(value), status_code=status_code, headers=headers, media_type=JSON_MEDIA_TYPE)


def error_code(status_code: int) -> str:
    """The `error` code of a status: 404 → `not_found`."""
    try:
        return HTTPStatus(status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def error_response(exc: HTTPError, *, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    """The JSON error body `{"error": code, "detail": sentence}` with the error's status."""
    return json_response({**exc.body(), **extra}, exc.status_code, headers)


class RawResponse:
    """A complete response as two ASGI messages with prebuilt headers: the hot path's reply."""

    __slots__ = ("status_code", "body", "media_type")

    def __init__(self, body: bytes, media_type: bytes = b"application/json", status_code: int = 200) -> None:
        self.body = body
        self.media_type = media_type
        self.status_code = status_code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", self.media_type), (b"content-length", str(len(self.body)).encode())]
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def render(result: Any) -> ASGIApp:
    """Make a response from a callback's return value."""
    if isinstance(result, Response):
        return result
    if isinstance(result, (bytes, bytearray, memoryview)):
        return RawResponse(bytes(result), b"application/octet-stream")
    return RawResponse(encode_json(result))


class FileReturn(FileResponse):
    """A streamed file response; reads in 1 MiB chunks to keep thread hops few."""

    chunk_size = 1024 * 1024


def file_return(
    path: str | os.PathLike[str],
    *,
    filename: str | None = None,
    media_type: str | None = None,
    delete_after: bool = False,
) -> FileReturn:
    """Answer a request with the file at `path` instead of JSON.

    The media type is guessed from the name, `Content-Disposition` carries `filename`
    (the file's own name by default), and `delete_after=True` removes the file once sent.
    """
    stat = os.stat(path)  # fail inside the callback, where the error is attributed to it
    if not os.path.isfile(path):
        raise IsADirectoryError(f"file_return({os.fspath(path)!r}): not a regular file")
    background: Any = BackgroundTask(os.unlink, path) if delete_after else None
    return FileReturn(
        path,
        filename=filename or os.path.basename(os.fspath(path)),
        media_type=media_type,
        stat_result=stat,
        background=background,
    )


def stored_response(result: Any) -> StoredResult | None:
    """What a job keeps of a returned response (None when `result` is not one): the status, the
    headers and the body exactly as the synchronous call sends them, a stream read to its end.

    The response is run as an ASGI app into a temporary file, so every kind (a streamed body, a
    file, `Set-Cookie` twice, a `Location`) is kept the same way, and its background task (e.g.
    `delete_after`) runs as it would after sending.
    """
    if not isinstance(result, (Response, RawResponse)):
        return None
    fd, tmp = tempfile.mkstemp(prefix="izzati-result-")
    try:
        with os.fdopen(fd, "wb") as sink:
            status, raw_headers = asyncio.run(_drain(result, sink))
    except BaseException:
        os.unlink(tmp)
        raise
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw_headers]
    media_type = next((v for k, v in headers if k.lower() == "content-type"), "application/octet-stream")
    kept = [(k, v) for k, v in headers if k.lower() not in _NOT_KEPT]
    meta: ResultMeta = {"status_code": status, "media_type": media_type, "headers": kept}
    return StoredResult(meta, None, tmp, after=lambda: os.unlink(tmp))


# recomputed when the stored result is served, or about this one connection
_NOT_KEPT = frozenset(
    {"content-type", "content-length", "transfer-encoding", "connection", "keep-alive", "etag", "last-modified", "date"}
)


async def _drain(response: ASGIApp, sink: IO[bytes]) -> tuple[int, list[tuple[bytes, bytes]]]:
    """Run `response` as the reply to a request that nobody hangs up on; write its body to `sink`."""
    started: dict[str, Any] = {}
    never = asyncio.Event()

    async def receive() -> Message:
        await never.wait()  # the client never disconnects
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
        elif message["type"] == "http.response.body":
            sink.write(message.get("body", b""))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [],
        "scheme": "http",
        "root_path": "",
    }
    await response(scope, receive, send)
    return int(started.get("status", 200)), list(started.get("headers", []))


def format_traceback(exc: BaseException) -> str:
    """The traceback of `exc` as one string, for debug responses."""
    return "".join(traceback.format_exception(exc))
