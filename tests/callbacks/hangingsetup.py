"""A model whose setup() never returns (a download that hangs, a lock never released)."""

from __future__ import annotations

import threading
from typing import Any


class Model:
    """setup() waits forever; a call, were one ever made, answers an empty object."""

    def setup(self) -> None:
        threading.Event().wait()

    def __call__(self, text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
        return {}
