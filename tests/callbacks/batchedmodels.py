"""A batch callback with multiplexed models: `OneAtATime`'s loader (`max_models=1`) under a
callback that takes batches, two at once. Each reply names the model its batch ran with, the
batch's size, and whether that model had been torn down when the batch answered (it never should
be). A batch with a `hold=1` call waits, its model in hand, until `release(model_id)`."""

from __future__ import annotations

import threading
from typing import Any

import izzati
from tests.callbacks.multiplexed import OneAtATime

WAIT_MS = 500  # long enough that calls sent together meet in one batch, even on a busy machine


class Batched(OneAtATime):
    @izzati.batched(max_size=8, max_wait_ms=WAIT_MS, max_concurrent=2)
    def __call__(self, batch: list[tuple[dict[str, Any], Any]]) -> list[dict[str, Any]]:  # type: ignore[override]
        model = self.load()
        if any(text.get("hold") for text, _ in batch):
            self.inside.setdefault(model.model_id, threading.Event()).set()
            self.gates.setdefault(model.model_id, threading.Event()).wait(30)
        self.events.append(("answer", model.model_id))
        answer = {"model": model.model_id, "asked": izzati.model_id(), "size": len(batch), "released": model.released}
        return [dict(answer, n=text.get("n")) for text, _ in batch]


class Turns(OneAtATime):
    """Batches of 2, one at a time, short waits; `order` lists each batch's model as it runs. A batch
    with a `hold=1` call waits until `release(model_id)`."""

    def setup(self) -> None:
        super().setup()
        self.order: list[tuple[str, int]] = []

    @izzati.batched(max_size=2, max_wait_ms=50, max_concurrent=1)
    def __call__(self, batch: list[tuple[dict[str, Any], Any]]) -> list[dict[str, Any]]:  # type: ignore[override]
        model = self.load()
        self.order.append((model.model_id, len(batch)))
        if any(text.get("hold") for text, _ in batch):
            self.inside.setdefault(model.model_id, threading.Event()).set()
            self.gates.setdefault(model.model_id, threading.Event()).wait(30)
        return [{"model": model.model_id} for _ in batch]
