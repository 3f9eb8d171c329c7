"""`Door`: a standard API served beside `POST /` (the OpenAI-compatible endpoints, MCP), with
its own routes, its own start and stop, and its own shape of a 401."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

from starlette.responses import Response
from starlette.routing import BaseRoute

from ..exceptions import ConfigError

if TYPE_CHECKING:
    from ..jobs.service import JobService
    from .endpoint import Endpoint

__all__ = ["Door", "open_doors"]


class Door(Protocol):
    """What `IzzatiApp` needs of a door."""

    prefix: str
    """The paths it serves start with this (`/v1/`, `/mcp`): its errors, the 401 too, are its own."""

    def routes(self) -> list[BaseRoute]:
        """The routes to add to the app."""
        ...

    def running(self) -> AbstractAsyncContextManager[None]:
        """Entered for the server process's life (its lifespan): set up, serve, tear down."""
        ...

    def setting_up(self) -> list[str]:
        """What is still setting up in this process (the readiness probe says it)."""
        ...

    def unauthorized(self) -> Response:
        """Its reply to a request without the API key."""
        ...


def open_doors(
    endpoint: Endpoint,
    routes: Mapping[str, Endpoint],
    *,
    chat: Mapping[str, Callable[..., Any]],
    embeddings: Mapping[str, Callable[..., Any]],
    mcp: bool,
    mcp_wait: float,
    jobs: JobService | None,
    max_inflight: int | None,
    threads: int,
    metrics: bool,
    title: str,
) -> list[Door]:
    """The doors a `Backend` opens: the OpenAI-compatible endpoints for its chat and embedding
    models (sharing `endpoint`'s thread pool), and with `mcp` each route's callback as an MCP tool."""
    doors: list[Door] = []
    if chat or embeddings:
        from .openai import OpenAIDoor

        doors.append(
            OpenAIDoor(
                chat,
                embeddings,
                pool=lambda: endpoint.pool,
                max_body_bytes=endpoint.limits.max_body_bytes,
                max_inflight=max_inflight,
                threads=threads,
                metrics=metrics,
            )
        )
    if mcp:
        try:
            from .mcp import McpDoor, Tool
        except ImportError as exc:
            raise ConfigError(f"mcp=True needs the MCP SDK: pip install 'izzati[mcp]' ({exc})") from None
        if len(routes) == 1:  # one callback: the tool is named after it
            tools = [Tool.of(endpoint)]
        else:  # several routes: each tool after its path (the callback's name at /)
            tools = [Tool.of(each, path.strip("/").replace("/", "_") or None) for path, each in routes.items()]
        doors.append(McpDoor(tools, jobs=jobs, wait=mcp_wait, title=title))
    return doors
