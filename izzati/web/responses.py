"""Turning what a callback returns, or an error, into an HTTP response; `file_return`."""

from __future__ import annotations

import os
import traceback
from http import HTTPStatus
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import FileResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..exceptions import HTTPError
from ..invoker import encode_json
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
    return json_response({"error": exc.code, "detail": exc.detail, **extra}, exc.status_code, headers)


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
    """What a job keeps of a returned response (None when `result` is not one)."""
    if isinstance(result, RawResponse):
        raw: ResultMeta = {"status_code": result.status_code, "media_type": result.media_type.decode(), "headers": {}}
        return StoredResult(raw, result.body)
    if not isinstance(result, Response):
        return None
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in result.raw_headers}
    meta: ResultMeta = {
        "status_code": result.status_code,
        "media_type": headers.get("content-type", "application/octet-stream"),
        "headers": {k: v for k, v in headers.items() if k in ("content-disposition",)},
    }
    task = result.background
    after = None if task is None else lambda: task.func(*task.args, **task.kwargs)
    if isinstance(result, FileResponse):  # file_return: keep a copy, the original may be temporary
        return StoredResult(meta, None, os.fspath(result.path), after)
    return StoredResult(meta, bytes(getattr(result, "body", b"")), None, after)


def format_traceback(exc: BaseException) -> str:
    """The traceback of `exc` as one string, for debug responses."""
    return "".join(traceback.format_exception(exc))
