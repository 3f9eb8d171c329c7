"""`McpDoor`: each route's callback as an MCP tool at `/mcp` (streamable HTTP), on the official
`mcp` SDK's low-level server and session manager (stateless: any server process answers any
request, as for HTTP), plus the `izzati_job` tool that follows a call that went on as a job."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from ... import __version__
from ...exceptions import ServiceUnavailable, Unauthorized
from ...jobs.service import JobService
from ..responses import error_response
from .calls import job_state, run_as_job, run_direct
from .tools import Tool, error_result, problems

__all__ = ["McpDoor", "JOB_TOOL"]

logger = logging.getLogger("izzati")

JOB_TOOL = "izzati_job"

_JOB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "job_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "cancel": {"type": "boolean", "default": False},
    },
    "required": ["job_id"],
    "additionalProperties": False,
}


class McpDoor:
    """Serves `tools` over MCP at `/mcp`.

    Arguments:
        tools: one per route's callback.
        jobs: where a call runs as a job (progress, cancel, and going on past `wait`); None: each
            call runs directly in this process, with cancel but no progress.
        wait: seconds a tool call waits for its job before it answers with the job to follow.
        title: the server's name in MCP's `serverInfo`.
    """

    prefix = "/mcp"

    def __init__(self, tools: Sequence[Tool], *, jobs: JobService | None, wait: float, title: str = "izzati") -> None:
        names = [tool.name for tool in tools]
        if len(set(names)) != len(names) or JOB_TOOL in names:
            raise ValueError(f"MCP tool names must be unique and not {JOB_TOOL!r}: {names}")
        self.tools = {tool.name: tool for tool in tools}
        self.jobs = jobs
        self.wait = wait
        self.server: Server[Any] = Server(
            title, version=__version__, on_list_tools=self._list_tools, on_call_tool=self._call_tool
        )
        self._manager: StreamableHTTPSessionManager | None = None

    def routes(self) -> list[BaseRoute]:
        """`/mcp`, answered by the SDK's session manager of this process."""
        return [Route("/mcp", _Endpoint(self), include_in_schema=False)]

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request at `/mcp`."""
        if self._manager is None:  # an app whose lifespan never ran
            error = ServiceUnavailable("MCP is not running: the server's lifespan did not start")
            await error_response(error)(scope, receive, send)
            return
        await StreamableHTTPASGIApp(self._manager)(scope, receive, send)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The SDK's session manager for this server process's life (one per `run()`)."""
        self._manager = StreamableHTTPSessionManager(app=self.server, stateless=True)
        async with self._manager.run():
            yield
        self._manager = None

    def setting_up(self) -> list[str]:
        """Nothing of its own: the tools' callbacks set up with their routes."""
        return []

    def unauthorized(self) -> Response:
        """izzati's 401, with the `WWW-Authenticate: Bearer` MCP clients look for."""
        error = Unauthorized("this service needs an API key: send Authorization: Bearer <key>")
        return error_response(error, headers={"WWW-Authenticate": "Bearer"})

    async def _list_tools(self, ctx: ServerRequestContext[Any], params: Any) -> types.ListToolsResult:
        listed = [tool.listed() for tool in self.tools.values()]
        if self.jobs is not None:
            description = (
                "Follow a tool call that went on as an izzati job (its result said `job`): its status and "
                "progress, its result once done; `cancel: true` cancels it."
            )
            listed.append(types.Tool(name=JOB_TOOL, description=description, input_schema=_JOB_SCHEMA))
        return types.ListToolsResult(tools=listed)

    async def _call_tool(self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> Any:
        arguments = dict(params.arguments or {})
        if params.name == JOB_TOOL and self.jobs is not None:
            return await self._job_tool(arguments)
        tool = self.tools.get(params.name)
        if tool is None:
            return error_result("not_found", f"no tool named {params.name!r}; tools: {', '.join(self.tools)}")
        found = tool.problems(arguments)
        if found:
            detail = "; ".join(f"{'.'.join(str(at) for at in p['loc']) or '(arguments)'}: {p['msg']}" for p in found)
            return error_result("validation_error", f"the arguments are not valid: {detail}", errors=found)

        async def report(fraction: float | None, message: str | None) -> None:
            await ctx.session.report_progress(fraction if fraction is not None else 0.0, 1.0, message)

        if self.jobs is not None:
            return await run_as_job(self.jobs, arguments, report, self.wait)
        return await run_direct(tool, arguments)

    async def _job_tool(self, arguments: dict[str, Any]) -> types.CallToolResult:
        assert self.jobs is not None
        found = problems(_JOB_SCHEMA, arguments)
        if found:
            return error_result("validation_error", "the arguments are not valid", errors=found)
        jobs, job_id = self.jobs, arguments["job_id"]
        if arguments.get("cancel"):
            await anyio.to_thread.run_sync(_cancel, jobs, job_id)
        return await anyio.to_thread.run_sync(job_state, jobs, job_id)


class _Endpoint:
    """The door as a raw ASGI endpoint (a method would be taken for a request-response function)."""

    def __init__(self, door: McpDoor) -> None:
        self.door = door

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.door.serve(scope, receive, send)


def _cancel(jobs: JobService, job_id: str) -> None:
    try:
        jobs.cancel(job_id)
    except Exception:  # unknown or gone: job_state says so
        logger.debug("job %s could not be cancelled", job_id, exc_info=True)
