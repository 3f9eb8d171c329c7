"""The official MCP SDK's client, connected to a server's /mcp with an optional API key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


@asynccontextmanager
async def connect(url: str, key: str | None = None) -> AsyncIterator[Client]:
    """A client of `url`/mcp, sending `Authorization: Bearer <key>` when a key is given."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with Client(streamable_http_client(url + "/mcp", http_client=http)) as client:
            yield client
