"""A callback as an MCP tool: its name, description (the docstring), input schema (the same as
`/openapi.json` gives its route) and how its arguments are checked against that schema."""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable
from typing import Any

import jsonschema
import mcp_types as types

from ...invoker import encode_json
from ..endpoint import Endpoint
from ..openapi import POST_ROOT

__all__ = ["Tool", "input_schema", "tool_name", "problems", "text_result", "error_result"]


def input_schema(callback: Callable[..., Any]) -> dict[str, Any]:
    """The JSON schema of a callback's inputs, as `/openapi.json` describes its route's body.

    The one place the MCP door asks it: a classic `callback(text, data)` takes text fields (the
    form schema of `POST /`); a typed callback's schema comes from its signature once typed
    callbacks exist (issue 21), here too.
    """
    del callback  # every callback is classic until typed callbacks land
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
        return cls(name or tool_name(callback), _description(callback), input_schema(callback), endpoint)

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
