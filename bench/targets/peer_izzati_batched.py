"""The batched izzati model of `python -m bench peers` (imported by peer_izzati.py for `--batch`).

izzati's own batching, `@izzati.batched(max_size=BENCH_BATCH, max_wait_ms=BENCH_WAIT_MS)`:
`__call__` gets the batch's `(text, data)` pairs in arrival order and stacks their xs into one
matrix, one pass over W, one reply per pair.
"""

from __future__ import annotations

import os
from typing import Any

import izzati
from bench.targets import peer_model

__all__ = ["BatchedModel"]

BATCH = int(os.environ.get("BENCH_BATCH", "8"))
WAIT_MS = float(os.environ.get("BENCH_WAIT_MS", "5"))


class BatchedModel:
    """P2/P3 with izzati's batching: W made in setup(), one pass over it per batch."""

    def setup(self) -> None:
        self.w = peer_model.weights(peer_model.size_from_env())

    @izzati.batched(max_size=BATCH, max_wait_ms=WAIT_MS)  # type: ignore[untyped-decorator]  # until it lands
    def __call__(self, batch: list[tuple[dict[str, Any], list[Any]]]) -> list[Any]:
        return peer_model.predict_batch(self.w, [text["x"] for text, _ in batch])
