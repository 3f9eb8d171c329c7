"""A callback that takes as long as it is told to: `seconds` (default 5)."""

from __future__ import annotations

import time
from typing import Any


def handle(text: dict[str, Any], data: list[Any]) -> dict[str, str]:
    """Sleep `seconds`, then answer."""
    time.sleep(float(text.get("seconds", "5")))
    return {"status": "done"}
