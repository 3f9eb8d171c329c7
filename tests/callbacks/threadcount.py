"""A callback that answers with the threads its process's numeric libraries use: torch's, the
BLAS libraries' (threadpoolctl) and OMP_NUM_THREADS. torch and numpy are imported here, in the
parent, before the server processes are forked, as a user's model module does."""

from __future__ import annotations

import os
from typing import Any

import numpy
import torch
from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

import izzati
from izzati import threads

assert numpy  # loaded for its BLAS


def report(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
    blas = sorted({int(info["num_threads"]) for info in threadpool_info() if info["user_api"] == "blas"})
    omp = os.environ.get("OMP_NUM_THREADS")
    return {"pid": os.getpid(), "omp": omp, "torch": torch.get_num_threads(), "blas": blas}


@izzati.batched(max_size=4, max_wait_ms=1)
def batched_report(batch: list[tuple[dict[str, Any], list[Any]]]) -> list[dict[str, Any]]:
    """`report` for each call of a batch, with the batches this process runs at once."""
    return [{**report(text, data), "batches_at_once": threads.batches_at_once()} for text, data in batch]


@izzati.batched(max_size=4, max_wait_ms=1, max_concurrent=1)
def one_batch_at_a_time(batch: list[tuple[dict[str, Any], list[Any]]]) -> list[dict[str, Any]]:
    """`report` for each call, from a batch callback that must not run twice at once."""
    return [report(text, data) for text, data in batch]
