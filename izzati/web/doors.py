"""`Door`: a standard API served beside `POST /` (the OpenAI-compatible endpoints, MCP), with
its own routes, its own start and stop, and its own shape of a 401."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from starlette.responses import Response
from starlette.routing import BaseRoute

__all__ = ["Door"]


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
