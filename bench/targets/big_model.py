"""A model whose setup() holds `BIG_MODEL_MB` MiB of weights (touched, so resident), for the
process-tree memory benchmark (bench/tree_memory.py)."""

from __future__ import annotations

import os
from typing import Any


class Model:
    """setup() loads the weights once per process; a call answers with their size and its pid."""

    def setup(self) -> None:
        size = int(os.environ.get("BIG_MODEL_MB", "200")) * 1024 * 1024
        self.weights = bytearray(os.urandom(1024) * (size // 1024))  # every page written: resident

    def __call__(self, text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
        return {"mb": len(self.weights) // (1024 * 1024), "pid": os.getpid()}
