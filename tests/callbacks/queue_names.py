"""The spec's mode-2 callback and worker: the callback puts text['name'], the worker prints it."""

from __future__ import annotations

import os
import sys
import time
from typing import Any


def callback(text: dict[str, Any], data: list[Any], q: Any) -> dict[str, str]:
    """Put the sent name on the queue (q as a later parameter: passed as q=)."""
    q.put(text["name"])
    return {"status": "OK"}


def callback_q_first(q: Any, text: dict[str, Any], data: list[Any]) -> dict[str, str]:
    """The spec's mode-1 shape: q first."""
    q.put(text["name"])
    return {"status": "OK"}


def callback_no_q(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
    """No queue at all."""
    return {"got": text}


def greeter(q: Any, greeting: str) -> None:
    """Print `greeting, name` for each item, one line each."""
    while True:
        name = q.get()
        print(f"{greeting}, {name} pid={os.getpid()}", flush=True)


def slow_greeter(q: Any, greeting: str, hold: float = 1.0) -> None:
    """Announce each item as taken, hold it for `hold` seconds, then print it as done."""
    while True:
        name = q.get()
        print(f"took {name} pid={os.getpid()}", flush=True)
        time.sleep(hold)
        print(f"{greeting}, {name} pid={os.getpid()}", flush=True)
        sys.stdout.flush()
