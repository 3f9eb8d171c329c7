"""A typed callback as an MCP tool: its input schema is the typed signature (as in /openapi.json),
its arguments arrive as JSON values and are validated as `POST /` validates them, through a real
uvicorn server and the official `mcp` SDK's client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import httpx

from izzati import Backend
from tests.callbacks import typed
from tests.support.mcpclient import connect

Serve = Callable[..., str]


def resolved(schema: Any, defs: dict[str, Any]) -> Any:
    """`schema` with every `$ref` (to `#/components/schemas/` or `#/$defs/`) replaced by its target."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return resolved(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
        return {key: resolved(value, defs) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [resolved(value, defs) for value in schema]
    return schema


def test_a_typed_tool_has_the_typed_schema_and_takes_json_values(serve: Serve) -> None:
    url = serve(Backend(typed.predict, mcp=True, access_log=False, metrics=False).app)
    document = httpx.get(url + "/openapi.json").json()
    body = document["paths"]["/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    expected = resolved(body, document["components"]["schemas"])

    async def main() -> None:
        async with connect(url) as client:
            (tool,) = (await client.list_tools()).tools
            assert tool.description == "Every kind of field, echoed back with its Python type."
            assert resolved(tool.input_schema, tool.input_schema.get("$defs", {})) == expected
            assert tool.input_schema["required"] == ["n"]
            result = await client.call_tool("predict", {"n": 3, "tags": ["a", "b"], "color": "blue", "flag": True})
            assert not result.is_error, result.content
            assert result.structured_content is not None
            assert result.structured_content["n"] == [3, "int"]
            assert result.structured_content["tags"] == [["a", "b"], "list"]
            assert result.structured_content["color"] == ["blue", "Color"]
            assert result.structured_content["flag"] == [True, "bool"]
            bad = await client.call_tool("predict", {"n": "three", "mode": "slow", "ratio": 2})
            assert bad.is_error and bad.structured_content is not None
            assert bad.structured_content["error"] == "validation_error"
            assert [(e["loc"], e["type"]) for e in bad.structured_content["errors"]] == [
                (["n"], "int_parsing"),
                (["mode"], "literal_error"),
                (["ratio"], "less_than_equal"),
            ]
            assert all(e["msg"] for e in bad.structured_content["errors"])

    anyio.run(main)


def test_a_model_body_tool_is_checked_by_its_model(serve: Serve) -> None:
    url = serve(Backend(typed.order, mcp=True, jobs=True, access_log=False, metrics=False).app)

    async def main() -> None:
        async with connect(url) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert tools["order"].input_schema["properties"]["qty"] == {"minimum": 1, "title": "Qty", "type": "integer"}
            refused = await client.call_tool("order", {"item": "pen", "qty": 0, "colour": "red"})
            assert refused.is_error and refused.structured_content is not None
            found = [e["type"] for e in refused.structured_content["errors"]]
            assert found == ["greater_than_equal", "extra_forbidden"]

    anyio.run(main)
