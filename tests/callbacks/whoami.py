"""A callback that names the server process that ran it."""

from __future__ import annotations

import os
from typing import Any


def handle(text: dict[str, Any], data: list[Any]) -> dict[str, int]:
    """Answer with this process's pid."""
    return {"pid": os.getpid()}
