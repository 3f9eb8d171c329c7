"""MCP: each route's callback as a tool at `/mcp` (streamable HTTP), on the official `mcp` SDK.

Modules: `tools` (a callback as a tool: name, docstring, input schema, argument checks),
`calls` (a call run as a job or directly; a long one goes on as a job), `door` (the server).
Imported only when a service turns MCP on (`Backend(mcp=True)`, `IZZATI_MCP`): `izzati[mcp]`.
"""

from __future__ import annotations

from .door import JOB_TOOL, McpDoor
from .tools import Tool

__all__ = ["McpDoor", "Tool", "JOB_TOOL"]
