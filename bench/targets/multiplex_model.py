"""A multiplexed callback for `python -m bench multiplex`: ten model ids, each load takes
BENCH_LOAD_MS milliseconds and holds BENCH_MODEL_MB MiB; BENCH_MAX_MODELS models kept per process."""

from __future__ import annotations

import os
import time
from typing import Any

import izzati

MAX_MODELS = int(os.environ.get("BENCH_MAX_MODELS", "3"))
LOAD_SECONDS = float(os.environ.get("BENCH_LOAD_MS", "50")) / 1000
MODEL_BYTES = int(float(os.environ.get("BENCH_MODEL_MB", "8")) * 2**20)
KNOWN = {f"m{i}" for i in range(10)}


class Weights:
    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.blob: bytearray | None = bytearray(MODEL_BYTES)  # touched: resident memory

    def teardown(self) -> None:
        self.blob = None


class Classifier:
    def setup(self) -> None:
        pass

    @izzati.multiplexed(max_models=MAX_MODELS)
    def load(self, model_id: str) -> Weights:
        if model_id not in KNOWN:
            raise KeyError(model_id)
        time.sleep(LOAD_SECONDS)
        return Weights(model_id)

    def __call__(self, text: dict[str, Any], data: Any) -> dict[str, Any]:
        return {"model": self.load().model_id}
