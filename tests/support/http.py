"""Waiting for HTTP servers, and hearing from each of their processes."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import httpx


def wait_for_http(url: str, timeout: float = 15.0, proc: subprocess.Popen[Any] | None = None) -> None:
    """Poll `url` until it answers 200, failing early if `proc` exits."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {timeout} s: {last}")


def one_reply_from_each(url: str, processes: int, timeout: float = 60) -> dict[int, dict[str, Any]]:
    """POST `url` on new connections (the kernel spreads them over the server processes) until
    each of `processes` processes has answered; their JSON replies by the `pid` each names."""
    seen: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < processes:
        assert time.monotonic() < deadline, seen
        try:
            reply = httpx.post(url).json()
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        seen[int(reply["pid"])] = reply
    return seen
