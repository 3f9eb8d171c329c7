"""A callback for the share-nothing test: what it does is chosen by the `mode` field."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from typing import Any

from izzati import cancelled, file_return, progress


def handle(text: dict[str, Any], data: list[Any]) -> Any:
    """digest (default): the input's SHA-256; file: the input back as a file; slow: reports its
    process id as progress, then works for `seconds` (or until the file `until` exists, at most
    300 s) unless cancelled; big: a file of `mib` MiB."""
    mode = text.get("mode", "digest")
    if mode == "big":
        fd, path = tempfile.mkstemp(prefix="sharenothing-big-")
        with os.fdopen(fd, "wb") as out:
            block = bytes(range(256)) * 4096  # 1 MiB
            for _ in range(int(text.get("mib", 1))):
                out.write(block)
        return file_return(path, filename="big.bin", delete_after=True)
    if mode == "slow":
        progress(0.1, f"pid {os.getpid()}")
        until = text.get("until")
        deadline = time.monotonic() + float(text.get("seconds", 300 if until else 5))
        while time.monotonic() < deadline and not (until and os.path.exists(until)):
            if cancelled():
                return {"cancelled": True}
            time.sleep(0.02)
        return {"slept": True}
    if mode == "file":
        fd, path = tempfile.mkstemp(prefix="sharenothing-")
        with os.fdopen(fd, "wb") as out:
            data[0].save(out)
        return file_return(path, filename="echo.bin", delete_after=True)
    body = data[0].read()
    return {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body), "n": text.get("n")}
