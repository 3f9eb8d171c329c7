"""Every error izzati raises, under one base class."""

from __future__ import annotations

from typing import Any

__all__ = [
    "IzzatiError",
    "HTTPError",
    "BadRequest",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "RequestTimeout",
    "CallbackTimeout",
    "ServiceUnavailable",
    "JobStoreUnavailable",
    "Overloaded",
    "SettingUp",
    "IdempotencyConflict",
    "Unauthorized",
    "HeadersTooLarge",
    "CallbackError",
    "InvalidInput",
    "InvalidResult",
    "BatchFailed",
    "UnknownModel",
    "ModelRequired",
    "ConfigError",
    "QueueError",
    "QueueUnavailable",
    "QueueClosed",
    "UsageError",
    "WorkerStopped",
]


class IzzatiError(Exception):
    """Base class of all izzati errors."""


class HTTPError(IzzatiError):
    """An error that becomes an HTTP response with a JSON body `{"error", "detail"}`."""

    status_code = 500
    code = "internal_error"

    def __init__(self, detail: str, *, code: str | None = None, status_code: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code

    def body(self) -> dict[str, Any]:
        """The JSON body of the reply."""
        return {"error": self.code, "detail": self.detail}


class BadRequest(HTTPError, ValueError):
    """The request body could not be read: malformed JSON, form or multipart."""

    status_code = 400
    code = "bad_request"


class PayloadTooLarge(HTTPError):
    """The request body, a field or the number of parts is over a configured limit."""

    status_code = 413
    code = "payload_too_large"


class RequestTimeout(HTTPError):
    """The client stopped sending the request body."""

    status_code = 408
    code = "request_timeout"


class IdempotencyConflict(HTTPError):
    """A job with the same Idempotency-Key is still being created."""

    status_code = 409
    code = "idempotency_conflict"


class ServiceUnavailable(HTTPError):
    """Something the service needs (the queue) cannot be reached now."""

    status_code = 503
    code = "service_unavailable"


class JobStoreUnavailable(ServiceUnavailable, ConnectionError):
    """The job store (its Redis or its object store) cannot be reached now."""

    code = "store_unavailable"


class Overloaded(HTTPError):
    """More work is waiting than the service accepts (`IZZATI_MAX_INFLIGHT`,
    `IZZATI_MAX_QUEUED_JOBS`): try again in `retry_after` seconds (the `Retry-After` header)."""

    status_code = 503
    code = "overloaded"

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class SettingUp(Overloaded):
    """The callback's `setup()` had not finished within the callback timeout: try again later."""

    code = "setting_up"


class CallbackTimeout(HTTPError):
    """The callback did not return within the configured time."""

    status_code = 504
    code = "callback_timeout"


class Unauthorized(HTTPError):
    """The request lacks the API key."""

    status_code = 401
    code = "unauthorized"


class HeadersTooLarge(HTTPError):
    """The request headers are over the configured limit."""

    status_code = 431
    code = "headers_too_large"


class UnsupportedMediaType(HTTPError):
    """A non-empty body of a media type izzati cannot read."""

    status_code = 415
    code = "unsupported_media_type"


class CallbackError(HTTPError):
    """The user's callback raised, or returned something izzati cannot send."""

    status_code = 500
    code = "callback_failed"


class InvalidInput(HTTPError, ValueError):
    """A typed callback's inputs are not what its signature says: `fields` lists every problem
    (`{"loc": [...], "msg": ..., "type": ...}`), and the callback is not called."""

    status_code = 422
    code = "invalid_input"

    def __init__(self, detail: str, fields: list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.fields = fields

    def body(self) -> dict[str, Any]:
        """The JSON body of the reply, with the list of problems."""
        return {"error": self.code, "detail": self.detail, "fields": self.fields}


class InvalidResult(CallbackError):
    """A typed callback returned something that does not match its return annotation (a bug of
    the service, logged)."""

    code = "invalid_result"


class BatchFailed(CallbackError):
    """A batch callback raised: each call of the batch gets this, caused by what it raised (whose
    traceback is logged once, for the batch)."""


class UnknownModel(HTTPError, KeyError):
    """A request named a model its `@izzati.multiplexed` loader does not know (the loader raised
    `KeyError`)."""

    status_code = 404
    code = "unknown_model"

    def __str__(self) -> str:  # KeyError's would quote the sentence
        return self.detail


class ModelRequired(BadRequest):
    """A multiplexed callback was called without a model id (no `Izzati-Model` header), or with
    one that cannot be an id."""

    code = "model_required"


class ConfigError(IzzatiError, ValueError):
    """A setting or argument is wrong; the message names the value."""


class QueueError(IzzatiError):
    """A queue operation failed."""


class QueueUnavailable(QueueError, ConnectionError):
    """The queue's broker cannot be reached."""


class QueueClosed(QueueError, EOFError):
    """The queue was closed."""


class UsageError(IzzatiError):
    """A problem with the `izzati` command line, reported as one line and exit code 2."""


class WorkerStopped(SystemExit):
    """Raised from `q.get()` in a worker that was asked to stop (SIGTERM): leaves the user's loop.

    A `SystemExit`, not an `IzzatiError`, so that a worker loop with `except Exception:` still ends.
    """
