"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with the right status.

The official clients raise by status (400 `BadRequestError`, 401 `AuthenticationError`, 404
`NotFoundError`, ...) and retry 408, 409, 429 and 5xx, or as `x-should-retry` says, after
`retry-after-ms` (else `retry-after`) when it is at most two minutes.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import Response

from ...exceptions import CallbackError, HTTPError, Overloaded
from ..responses import json_response

__all__ = ["OpenAIError", "openai_error", "error_event", "from_exception", "unauthorized"]

logger = logging.getLogger("izzati")

_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error"}
_TYPES |= {413: "invalid_request_error", 422: "invalid_request_error", 503: "server_error"}


class OpenAIError(HTTPError):
    """An error answered in OpenAI's shape; `param` names the offending request field."""

    def __init__(self, message: str, *, status_code: int = 400, code: str | None = None, param: str | None = None):
        super().__init__(message, code=code or "invalid_request", status_code=status_code)
        self.param = param


def _body(exc: HTTPError) -> dict[str, Any]:
    return {
        "error": {
            "message": exc.detail,
            "type": _TYPES.get(exc.status_code, "server_error" if exc.status_code >= 500 else "invalid_request_error"),
            "param": getattr(exc, "param", None),
            "code": exc.code,
        }
    }


def openai_error(exc: HTTPError, headers: dict[str, str] | None = None) -> Response:
    """The reply to an izzati `HTTPError`, in OpenAI's shape."""
    headers = dict(headers or {})
    if isinstance(exc, Overloaded):
        headers.setdefault("Retry-After", str(exc.retry_after))
        headers["x-should-retry"] = "true"
    elif isinstance(exc, CallbackError):
        headers["x-should-retry"] = "false"  # the same request would fail the same way
    return json_response(_body(exc), exc.status_code, headers or None)


def error_event(exc: Exception) -> dict[str, Any]:
    """What a stream sends when the callback fails after the first event (the status is sent)."""
    return _body(from_exception(exc, where="a streamed answer"))


def from_exception(exc: Exception, *, where: str) -> HTTPError:
    """Any exception met while answering as an `HTTPError` (a callback's own is logged here)."""
    if isinstance(exc, HTTPError):
        if isinstance(exc, CallbackError):
            logger.error("%s: %s", where, exc.detail)
        return exc
    logger.error("%s: the callback raised %s", where, type(exc).__name__, exc_info=exc)
    return CallbackError(f"the callback raised {type(exc).__name__}")


def unauthorized() -> Response:
    """The 401 of a `/v1/` path without the right API key."""
    error = OpenAIError(
        "this service needs an API key: send Authorization: Bearer <key>", status_code=401, code="invalid_api_key"
    )
    return openai_error(error, {"WWW-Authenticate": "Bearer"})
