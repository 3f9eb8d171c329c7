"""The OpenAPI operation of a typed callback: its request bodies (multipart, urlencoded, JSON),
its result (or streamed item), and every error reply with its JSON shape."""

from __future__ import annotations

from typing import Any

from ..fields import TYPED_MARK
from ..typed import Typed
from ..typed.schema import OpenAPISchemas, file_fields, openapi_schemas, without_files

__all__ = ["typed_operation", "typed_components", "ERROR_SCHEMAS"]

_ERROR = {"$ref": "#/components/schemas/Error"}

ERROR_SCHEMAS: dict[str, Any] = {
    "InvalidInput": {
        "type": "object",
        "required": ["error", "detail", "fields"],
        "properties": {
            "error": {"type": "string", "const": "invalid_input"},
            "detail": {"type": "string"},
            "fields": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["loc", "msg", "type"],
                    "properties": {
                        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                        "msg": {"type": "string"},
                        "type": {"type": "string"},
                    },
                },
            },
        },
    }
}


def _error(description: str, schema: dict[str, Any] = _ERROR) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors() -> dict[str, Any]:
    return {
        "400": _error("The body is malformed"),
        "401": _error("The API key is missing or wrong (when the service has one)"),
        "413": _error("The body, a field or a file is over a limit"),
        "415": _error("The body's media type cannot be read"),
        "422": _error(
            "An input is not what the signature says: every problem is listed",
            {"$ref": "#/components/schemas/InvalidInput"},
        ),
        "500": _error("The callback failed, or returned what its annotation does not allow (invalid_result)"),
        "503": _error("The service is overloaded or its queue is unavailable (see Retry-After)"),
    }


def _ref(schemas: OpenAPISchemas, schema: dict[str, Any]) -> dict[str, Any]:
    title = schema.get("title")
    if isinstance(title, str) and schemas.definitions.get(title) is schema:
        return {"$ref": f"#/components/schemas/{title}"}
    return schema


def _request_body(schemas: OpenAPISchemas) -> dict[str, Any]:
    inputs = schemas.inputs
    text_only = without_files(inputs)
    files = file_fields(inputs)
    multipart: dict[str, Any] = {"schema": _ref(schemas, inputs)}
    encoding = {name: {"contentType": ", ".join(accepted)} for name, accepted in files.items() if accepted}
    if encoding:
        multipart["encoding"] = encoding
    content: dict[str, Any] = {"multipart/form-data": multipart}
    form = _ref(schemas, text_only) if text_only is inputs else text_only
    content["application/x-www-form-urlencoded"] = {"schema": form}
    content["application/json"] = {"schema": form}
    return {"required": bool(inputs.get("required")), "content": content}


def _success(schemas: OpenAPISchemas) -> dict[str, Any]:
    if schemas.output is None:
        return {
            "description": "What the callback returned: JSON, or a file",
            "content": {
                "application/json": {"schema": {}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    if not schemas.stream:
        return {"description": "The callback's result", "content": {"application/json": {"schema": schemas.output}}}
    item = schemas.output
    return {
        "description": "The items the callback yields, each sent as it is made",
        "content": {
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "one JSON item per line"},
                "x-izzati-item": item,
            },
            "text/event-stream": {
                "schema": {"type": "string", "description": "one `data: <JSON item>` event per item"},
                "x-izzati-item": item,
            },
        },
    }


def typed_operation(typed: Typed, base: dict[str, Any], *, job: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """The operation of `base` (POST / or POST /jobs) for a typed callback, and the schemas it
    refers to (for `components/schemas`)."""
    schemas = openapi_schemas(typed)
    operation = {key: value for key, value in base.items() if key not in ("requestBody", "responses")}
    operation["description"] = (
        "The callback's parameters are its inputs: send them as multipart fields and files, an "
        "urlencoded form (strings, coerced) or a JSON object. A wrong input is a 422 listing every "
        "problem; the callback is not called."
    )
    operation[TYPED_MARK] = True
    operation["requestBody"] = _request_body(schemas)
    responses = _errors()
    if job:
        responses["202"] = base["responses"]["202"]
        responses["409"] = base["responses"]["409"]
    else:
        responses["200"] = _success(schemas)
    operation["responses"] = dict(sorted(responses.items()))
    return operation, {**schemas.definitions, **ERROR_SCHEMAS}


def typed_components(typed: Typed) -> dict[str, Any]:
    """The result's schema for the job result route (`{}`: not typed)."""
    schemas = openapi_schemas(typed)
    return schemas.output if schemas.output is not None and not schemas.stream else {}
