"""The one error policy: any exception met while serving becomes a JSON error reply, logged once.

The endpoint of `POST /`, the job routes and FastAPI's exception handlers all answer through
`error_reply`, so a given failure gets the same status, body and log line wherever it happens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..exceptions import (
    BatchFailed,
    CallbackError,
    HTTPError,
    Overloaded,
    PayloadTooLarge,
    QueueUnavailable,
    RequestTimeout,
    ServiceUnavailable,
)
from ..invoker import describe
from .responses import error_code, error_response, format_traceback, json_response

__all__ = ["error_reply", "exception_handler"]

logger = logging.getLogger("izzati")


def error_reply(
    exc: Exception, *, where: str, callback: Callable[..., Any] | None = None, debug: bool = False
) -> Response:
    """The reply to `exc`, raised while serving `where` ("POST /"): by the callback when
    `callback` is given, else by the server. `debug` puts a callback's traceback in the reply."""
    source = f"callback {describe(callback)}" if callback is not None else where
    if isinstance(exc, HTTPError):
        if isinstance(exc, BatchFailed):  # logged once, for its batch
            cause = exc.__cause__
            if debug and isinstance(cause, Exception):
                return error_response(exc, traceback=format_traceback(cause))
        elif isinstance(exc, CallbackError):  # e.g. a return value that is not JSON
            logger.error("%s: %s", source, exc.detail)
        # the rest of the body may still be on its way: close, or it would be read as a request
        headers = {"Connection": "close"} if isinstance(exc, (RequestTimeout, PayloadTooLarge)) else {}
        if isinstance(exc, Overloaded):
            headers["Retry-After"] = str(exc.retry_after)
        return error_response(exc, headers=headers or None)
    if isinstance(exc, QueueUnavailable):
        logger.error("%s: the queue is unavailable: %s", source, exc)
        return error_response(ServiceUnavailable(f"the queue is unavailable: {exc}"))
    if isinstance(exc, StarletteHTTPException):
        error = HTTPError(str(exc.detail), code=error_code(exc.status_code), status_code=exc.status_code)
        return error_response(error, headers=dict(exc.headers or {}))
    if isinstance(exc, RequestValidationError):
        body = {"error": "validation_error", "detail": "the request is not valid", "errors": exc.errors()}
        return json_response(body, 422)
    if callback is None:
        logger.error("unhandled error on %s", where, exc_info=exc)
        return error_response(HTTPError("the server failed to handle the request"))
    logger.error("%s raised %s", source, type(exc).__name__, exc_info=exc)
    if debug:
        error = CallbackError(f"the callback raised {type(exc).__name__}: {exc}")
        return error_response(error, traceback=format_traceback(exc))
    return error_response(CallbackError(f"the callback raised {type(exc).__name__}"))


async def exception_handler(request: Request, exc: Exception) -> Response:
    """`error_reply` as a FastAPI exception handler, for the routes FastAPI serves."""
    return error_reply(exc, where=f"{request.method} {request.url.path}")
