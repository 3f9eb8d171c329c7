"""A callback for job tests: what it does is chosen by the `mode` field."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from izzati import cancelled, file_return, progress


def _wait_for(path: str, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.02)
    return False


def handle(text: dict[str, Any], data: list[Any]) -> Any:
    """echo (default), progress, file, hold (until cancelled), fail, die (ends its process)."""
    mode = text.get("mode", "echo")
    if "started" in text:
        Path(text["started"]).write_text(str(os.getpid()))
    if mode == "progress":
        progress(0.25, "a quarter")
        _wait_for(text["gate"])
        progress(1.0, "finishing")
    elif mode == "file":
        fd, path = tempfile.mkstemp(suffix=".txt")
        os.write(fd, b"job file body")
        os.close(fd)
        return file_return(path, filename="report.txt", delete_after=True)
    elif mode == "hold":
        deadline = time.monotonic() + float(text.get("seconds", 30))
        while time.monotonic() < deadline:
            if cancelled():
                Path(text["saw_cancel"]).write_text("yes")
                return {"cancelled": True}
            time.sleep(0.05)
    elif mode == "fail":
        raise ValueError("job failed on purpose")
    elif mode == "die":
        os._exit(7)  # as a segfault or an OOM kill would end the process
    return {"text": text, "files": [(f.filename, f.read().decode()) for f in data]}
