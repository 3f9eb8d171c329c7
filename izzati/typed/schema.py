"""The JSON schemas of a typed callback, shaped for OpenAPI: definitions hoisted to
`components/schemas`, the fields that a JSON or urlencoded body can carry (no files), and what
each file field accepts (for the multipart `encoding`, the try page and `izzati send`)."""

from __future__ import annotations

import copy
from typing import Any

from pydantic.errors import PydanticInvalidForJsonSchema

from .files import FILE_MARK
from .signature import Typed

__all__ = ["COMPONENTS", "OpenAPISchemas", "openapi_schemas", "without_files", "file_fields"]

COMPONENTS = "#/components/schemas/{model}"


def _hoist(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    definitions.update(schema.pop("$defs", {}))
    return schema


def _accepted(schema: Any) -> list[str] | None:
    """The media types a file field accepts ([]: any), or None when it is no file field."""
    if not isinstance(schema, dict):
        return None
    if FILE_MARK in schema:
        return list(schema[FILE_MARK])
    for each in [schema.get("items"), *schema.get("anyOf", [])]:
        found = _accepted(each)
        if found is not None:
            return found
    return None


def file_fields(schema: dict[str, Any]) -> dict[str, list[str]]:
    """Each file field of an input schema and the media types it accepts ([]: any)."""
    fields = schema.get("properties", {}).items()
    return {name: accepted for name, field in fields if (accepted := _accepted(field)) is not None}


def without_files(schema: dict[str, Any]) -> dict[str, Any]:
    """An input schema without its file fields: what a JSON or urlencoded body can carry."""
    files = set(file_fields(schema))
    if not files:
        return schema
    kept = copy.deepcopy(schema)
    kept["properties"] = {name: field for name, field in kept["properties"].items() if name not in files}
    required = [name for name in kept.get("required", []) if name not in files]
    if required:
        kept["required"] = required
    else:
        kept.pop("required", None)
    return kept


class OpenAPISchemas:
    """A typed callback's schemas for one OpenAPI document.

    Arguments:
        inputs: the input schema (files as binary strings).
        output: the result's (or each streamed item's) schema; None: not typed.
        stream: the callback streams items.
        definitions: the models the schemas refer to, for `components/schemas`.
    """

    def __init__(
        self, inputs: dict[str, Any], output: dict[str, Any] | None, stream: bool, definitions: dict[str, Any]
    ) -> None:
        self.inputs = inputs
        self.output = output
        self.stream = stream
        self.definitions = definitions


def openapi_schemas(typed: Typed) -> OpenAPISchemas:
    """The schemas of `typed`, refs to `#/components/schemas/...` (a type with no JSON schema of
    its own is described as any value)."""
    definitions: dict[str, Any] = {}
    try:
        inputs = _hoist(typed.inputs.json_schema(COMPONENTS), definitions)
    except PydanticInvalidForJsonSchema:
        inputs = {"type": "object"}
    output = None
    if typed.outputs is not None:
        try:
            output = _hoist(typed.outputs.json_schema(COMPONENTS), definitions)
        except PydanticInvalidForJsonSchema:
            output = {}
    # a record that is the whole body (or a batch's item) is itself a component: refer to it
    title = inputs.get("title")
    if isinstance(title, str) and inputs.get("type") == "object":
        definitions.setdefault(title, inputs)
    stream = bool(typed.outputs is not None and typed.outputs.stream)
    return OpenAPISchemas(inputs, output, stream, definitions)
