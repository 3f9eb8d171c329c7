"""Batch callbacks: each batch is recorded (pid, process/thread name, size) in the file named by
BATCH_LOG; an item's text says how it should fail."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from typing import Any

import izzati
from izzati.exceptions import BadRequest

Batch = list[tuple[dict[str, Any], list[Any]]]


def _note(size: int) -> None:
    path = os.environ.get("BATCH_LOG")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        where = f"{multiprocessing.current_process().name}/{threading.current_thread().name}".replace(" ", "_")
        try:
            os.write(fd, f"{os.getpid()} {where} {size}\n".encode())
        finally:
            os.close(fd)


def _answer(batch: Batch, pid: int) -> list[Any]:
    if any(text.get("raise") for text, _ in batch):
        raise RuntimeError("the whole batch fails")
    if any(text.get("short") for text, _ in batch):
        return [{"n": batch[0][0].get("n")}]  # one result for the whole batch: wrong length
    results: list[Any] = []
    for text, data in batch:
        if text.get("fail") == "value":
            results.append(ValueError(f"item {text.get('n')} is bad"))
        elif text.get("fail") == "bad_request":
            results.append(BadRequest(f"item {text.get('n')} is not a number", code="not_a_number"))
        else:
            sizes = [len(d.read()) for d in data]
            results.append({"n": text.get("n"), "size": len(batch), "pid": pid, "files": sizes})
    return results


@izzati.batched(max_size=4, max_wait_ms=200)
def predict(batch: Batch) -> list[Any]:
    """A plain batch function (that takes BATCH_SECONDS, its start and end noted in BATCH_SPANS)."""
    _note(len(batch))
    started = time.monotonic()
    time.sleep(float(os.environ.get("BATCH_SECONDS", "0")))
    spans = os.environ.get("BATCH_SPANS")
    if spans:
        with open(spans, "a") as out:
            out.write(f"{started} {time.monotonic()} {len(batch)}\n")
    return _answer(batch, os.getpid())


@izzati.batched(max_size=4, max_wait_ms=200)
async def apredict(batch: Batch) -> list[Any]:
    """An async batch function."""
    _note(len(batch))
    await asyncio.sleep(0.01)
    return _answer(batch, os.getpid())


def undecorated(batch: Batch) -> list[Any]:
    """Takes batches only when IZZATI_BATCH_SIZE (or batch_size=) says so."""
    _note(len(batch))
    return _answer(batch, os.getpid())


class Model:
    """A model with setup() whose `__call__` takes batches."""

    def setup(self) -> None:
        self.loaded_by = os.getpid()

    @izzati.batched(max_size=8, max_wait_ms=300)
    def __call__(self, batch: Batch) -> list[Any]:
        _note(len(batch))
        return _answer(batch, self.loaded_by)
