"""Turning what a callback returns, or an error, into an HTTP response."""

from __future__ import annotations

import json
import traceback
from http import HTTPStatus
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .exceptions import CallbackError, HTTPError

__all__ = ["JSON_MEDIA_TYPE", "RawResponse", "json_response", "error_response", "render", "error_code"]

# The original clients compare the Content-Type header string exactly: no "; charset".
JSON_MEDIA_TYPE = "application/json"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def json_response(value: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with `Content-Type: application/json` exactly."""
    return Response(_dumps(value), status_code=status_code, headers=headers, media_type=JSON_MEDIA_TYPE)


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
    try:
        body = _dumps(result)
    except (TypeError, ValueError) as exc:
        raise CallbackError(
            f"the callback returned a {type(result).__name__} that cannot be sent as JSON ({exc}); "
            "return a dict, list, str, number, bool, None, bytes or file_return(path)"
        ) from exc
    return RawResponse(body)


def format_traceback(exc: BaseException) -> str:
    """The traceback of `exc` as one string, for debug responses."""
    return "".join(traceback.format_exception(exc))
