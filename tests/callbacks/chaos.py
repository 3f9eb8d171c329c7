"""The chaos test's callback and worker: good items are recorded, poison items raise or kill."""

from __future__ import annotations

import os
import signal
from typing import Any


def callback(text: dict[str, Any], data: list[Any], q: Any) -> dict[str, bool]:
    """Put the item the fields describe."""
    q.put({"kind": text["kind"], "n": int(text["n"])})
    return {"queued": True}


def worker(q: Any, results: str) -> None:
    """Append each good item's number to `results`; raise, or die, on the poison ones."""
    while True:
        item = q.get()
        if item["kind"] == "raise":
            raise RuntimeError(f"poison item {item['n']}")
        if item["kind"] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)  # as a segfault or the OOM killer would
        fd = os.open(results, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{item['n']} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
