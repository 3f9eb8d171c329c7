"""Waiting for HTTP servers."""

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
