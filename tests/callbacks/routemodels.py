"""Models for a service of several routes: each setup notes `pid route` in SETUP_LOG (and
takes SLOW_SETUP seconds in the route SLOW_ROUTE names); each call says which model answered."""

from __future__ import annotations

import os
import time
from typing import Any


class _Model:
    route = "?"

    def setup(self) -> None:
        path = os.environ.get("SETUP_LOG")
        if path:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, f"{os.getpid()} {self.route}\n".encode())
            finally:
                os.close(fd)
        if os.environ.get("SLOW_ROUTE") == self.route:
            time.sleep(float(os.environ.get("SLOW_SETUP", "0")))
        self.loaded_by = os.getpid()

    def __call__(self, text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
        return {"model": self.route, "text": text, "files": [f.filename for f in data], "loaded_by": self.loaded_by}


class Classifier(_Model):
    """The model of /classify."""

    route = "classify"


class Embedder(_Model):
    """The model of /embed."""

    route = "embed"


def words(text: dict[str, Any], data: list[Any]) -> Any:
    """A streaming route: one item per word of `text`."""
    for word in str(text.get("text", "")).split():
        yield {"word": word}
