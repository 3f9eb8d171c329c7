"""Callbacks for the metrics tests: answers with the pid, or fails when asked to."""

from __future__ import annotations

import os
import time
from typing import Any


def handle(text: dict[str, Any], data: list[Any]) -> dict[str, int]:
    """Answer with this process's pid; raise when the text says `fail`, sleep when it says `sleep`."""
    if text.get("fail"):
        raise RuntimeError("asked to fail")
    time.sleep(float(text.get("sleep", "0")))
    return {"pid": os.getpid()}


def process(q: Any) -> None:
    """A worker that takes items and acknowledges each."""
    while True:
        q.get()
        q.task_done()
