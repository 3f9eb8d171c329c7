"""A callback as an MCP tool: its name, description (the docstring), input schema (the same as
`/openapi.json` gives its route) and how its arguments are checked (a typed callback's own model,
else the schema)."""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable
from typing import Any

import jsonschema
import mcp_types as types

from ...exceptions import InvalidInput
from ...invoker import Invoker, encode_json
from ...typed.schema import without_files
from ..endpoint import Endpoint
from ..openapi import POST_ROOT

__all__ = ["Tool", "input_schema", "tool_name", "problems", "text_result", "error_result"]


def input_schema(invoker: Invoker) -> dict[str, Any]:
    """The JSON schema of a callback's inputs, as `/openapi.json` describes its route's body: a
    typed callback's signature (less its file fields: a tool's arguments are JSON), or, for a
    classic `callback(text, data)`, text fields (the form schema of `POST /`)."""
    if invoker.typed is not None:
        return without_files(invoker.typed.inputs.json_schema())
    schema: dict[str, Any] = POST_ROOT["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    return dict(schema)


def tool_name(callback: Callable[..., Any]) -> str:
    """A tool name from the callback's name (MCP allows letters, digits, `_`, `-`, `.`)."""
    func = callback if hasattr(callback, "__name__") else type(callback)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", getattr(func, "__name__", "callback"))
    return name[:128] or "callback"


def _description(callback: Callable[..., Any]) -> str:
    return inspect.getdoc(callback) or ""  # an object's: its class's


@dataclasses.dataclass(frozen=True)
class Tool:
    """One route's callback served as an MCP tool."""

    name: str
    description: str
    schema: dict[str, Any]
    endpoint: Endpoint

    @classmethod
    def of(cls, endpoint: Endpoint, name: str | None = None) -> Tool:
        """The tool of an endpoint's callback (named after the callback unless `name`)."""
        callback = endpoint.invoker.callback
        return cls(name or tool_name(callback), _description(callback), input_schema(endpoint.invoker), endpoint)

    def problems(self, arguments: dict[str, Any]) -> list[dict[str, Any]]:
        """Where `arguments` are not what the callback takes: one `{"loc", "msg", ...}` each
        (empty: valid). A typed callback's own model says it, as for its HTTP route's 422."""
        typed = self.endpoint.invoker.typed
        if typed is None:
            return problems(self.schema, arguments)
        try:
            typed.inputs.validate(typed.inputs.prepare(arguments, [], form=False))
        except InvalidInput as exc:
            return exc.fields
        return []

    def listed(self) -> types.Tool:
        """How `tools/list` shows it."""
        return types.Tool(name=self.name, description=self.description, input_schema=self.schema)


def problems(schema: dict[str, Any], arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """Where `arguments` break `schema`: one `{"loc", "msg"}` per problem (empty: valid)."""
    validator = jsonschema.Draft202012Validator(schema)
    found = sorted(validator.iter_errors(arguments), key=lambda error: list(error.absolute_path))
    return [{"loc": [str(part) for part in error.absolute_path], "msg": error.message} for error in found]


def text_result(value: Any) -> types.CallToolResult:
    """A callback's JSON result as a tool result: the JSON text, and structured when an object."""
    structured = value if isinstance(value, dict) else {"result": value}
    text = encode_json(value).decode("utf-8")
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=structured)


def error_result(error: str, detail: str, **extra: Any) -> types.CallToolResult:
    """A tool error (`isError`): izzati's error code and sentence, and the details."""
    body = {"error": error, "detail": detail, **extra}
    text = encode_json(body).decode("utf-8")
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structured_content=body, is_error=True
    )
