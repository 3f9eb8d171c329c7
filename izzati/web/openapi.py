"""The OpenAPI description of each route's `POST` (`/` and others), served outside FastAPI's routing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..typed import Typed
from .openapi_typed import typed_components, typed_operation

__all__ = ["service_schema"]

_ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}
_FIELDS = {"type": "object", "additionalProperties": {"type": "string"}}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


POST_ROOT: dict[str, Any] = {
    "summary": "Call the callback",
    "description": (
        "Text fields arrive in the callback as the `text` dict (a key sent several times maps to "
        "the list of its values); uploaded files arrive as the `data` list, in order. A multipart "
        "field named `json` holding a JSON object is merged into `text`. The reply is the "
        "callback's return value as JSON, or a file."
    ),
    "operationId": "call_callback",
    "requestBody": {
        "required": False,
        "content": {
            "application/x-www-form-urlencoded": {"schema": _FIELDS},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                    "additionalProperties": {"type": "string"},
                }
            },
            "application/json": {"schema": {"type": "object"}},
        },
    },
    "responses": {
        "200": {
            "description": "What the callback returned: JSON, or a file",
            "content": {
                "application/json": {"schema": {}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        "400": _error("The body is malformed"),
        "413": _error("The body is over a limit"),
        "415": _error("The body's media type cannot be read"),
        "500": _error("The callback failed"),
    },
}


POST_JOBS: dict[str, Any] = {
    **POST_ROOT,
    "summary": "Run the callback as a job",
    "description": "The same body as `POST /`; answers 202 with the job's status and a Location header. "
    "`POST /` with `Prefer: respond-async` does the same. Optional headers: `Idempotency-Key`, `Callback-URL`.",
    "operationId": "submit_job",
    "tags": ["jobs"],
    "responses": {
        "202": {"description": "The job was queued", "content": {"application/json": {"schema": {"type": "object"}}}},
        "400": _error("The body is malformed"),
        "409": _error("A job with this Idempotency-Key is still being stored"),
        "413": _error("The body is over a limit"),
        "415": _error("The body's media type cannot be read"),
        "503": _error("The queue is unavailable"),
    },
}


def _route_operation(path: str, base: dict[str, Any]) -> dict[str, Any]:
    """`base` for the route at `path` (its own operationId and summary beside `/`'s)."""
    if path == "/":
        return base
    slug = "".join(c if c.isalnum() else "_" for c in path.strip("/"))
    return {**base, "summary": f"{base['summary']} at {path}", "operationId": f"{base['operationId']}_{slug}"}


def _job_errors(schema: dict[str, Any]) -> None:
    """The errors the `/jobs/{job_id}` routes answer, in izzati's shape, instead of FastAPI's 422
    (a job id is any string: never a 422)."""
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/jobs/{job_id}"):
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses["404"] = _error("No such job (unknown, or expired)")
            if path.endswith("/result") and method == "get":
                responses["409"] = _error("The job has no result yet (not done), or was cancelled")
    schemas = schema.get("components", {}).get("schemas", {})
    if "HTTPValidationError" not in str(schema.get("paths")):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)


def service_schema(
    app: FastAPI, typed: Typed | Mapping[str, Typed | None] | None = None, *, jobs_path: str = "/"
) -> dict[str, Any]:
    """The OpenAPI schema of `app`'s FastAPI routes plus each route's `POST` (and `POST /jobs`, which
    runs the route at `jobs_path`), described from the signature of a `typed` callback."""
    by_path: Mapping[str, Typed | None] = typed if isinstance(typed, Mapping) else {"/": typed}
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    jobs = any(getattr(route, "path", None) == "/jobs" for route in app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = _ERROR
    _job_errors(schema)
    paths = schema.setdefault("paths", {})
    for path, route_typed in by_path.items():
        operation = _route_operation(path, POST_ROOT)
        if route_typed is None:
            paths.setdefault(path, {})["post"] = operation
        else:
            paths.setdefault(path, {})["post"], used = typed_operation(route_typed, operation)
            components.update(used)
    job_typed = by_path.get(jobs_path)
    if not jobs:
        return schema
    if job_typed is None:
        paths.setdefault("/jobs", {})["post"] = POST_JOBS
        return schema
    paths.setdefault("/jobs", {})["post"], used = typed_operation(job_typed, POST_JOBS, job=True)
    components.update(used)
    result = paths.get("/jobs/{job_id}/result", {}).get("get")
    output = typed_components(job_typed)
    if result is not None and output:
        result["responses"]["200"]["content"] = {"application/json": {"schema": output}}
    return schema
