"""A callback that names its server process after holding its connection `seconds` (default 0):
awaiting, or with `block` set, blocking its process's event loop meanwhile (as a careless
`async def` callback does)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any


async def handle(text: dict[str, Any], data: list[Any]) -> dict[str, int]:
    """Wait `seconds`, then answer with this process's pid."""
    seconds = float(text.get("seconds", "0"))
    if text.get("block"):
        time.sleep(seconds)
    else:
        await asyncio.sleep(seconds)
    return {"pid": os.getpid()}
