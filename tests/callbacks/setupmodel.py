"""A model served with setup(): loads once per process (slowly when told to), records each setup and
teardown in files named by environment variables."""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any


def _note(variable: str, line: str) -> None:
    path = os.environ.get(variable)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{line}\n".encode())
        finally:
            os.close(fd)


def _note_file(path: str, text: str) -> None:
    with open(path + ".tmp", "w") as file:
        file.write(text)
    os.replace(path + ".tmp", path)


class Model:
    """setup() 'loads weights'; each call answers with them and the pid that loaded them."""

    def setup(self) -> None:
        fail_in = os.environ.get("SETUP_FAIL_IN", "")
        name = multiprocessing.current_process().name
        _note("SETUP_LOG", f"{os.getpid()} {name}")
        time.sleep(float(os.environ.get("SETUP_SECONDS", "0")))
        if fail_in and fail_in in (name, "everywhere"):
            raise RuntimeError(f"no weights in {name}")
        self.weights = [1, 2, 3]
        self.loaded_by = os.getpid()

    def teardown(self) -> None:
        _note("TEARDOWN_LOG", str(os.getpid()))

    def __call__(self, text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
        hold = text.get("hold")
        if hold and not os.path.exists(hold):  # the first call told to: say which process runs it, then wait
            _note_file(hold, str(os.getpid()))
            time.sleep(60)
        return {"sum": sum(self.weights), "loaded_by": self.loaded_by, "pid": os.getpid()}
