"""A callback that answers with the threads its process's numeric libraries use: torch's, the
BLAS libraries' (threadpoolctl) and OMP_NUM_THREADS. torch and numpy are imported here, in the
parent, before the server processes are forked, as a user's model module does."""

from __future__ import annotations

import os
from typing import Any

import numpy
import torch
from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

assert numpy  # loaded for its BLAS


def report(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
    blas = sorted({int(info["num_threads"]) for info in threadpool_info() if info["user_api"] == "blas"})
    omp = os.environ.get("OMP_NUM_THREADS")
    return {"pid": os.getpid(), "omp": omp, "torch": torch.get_num_threads(), "blas": blas}
