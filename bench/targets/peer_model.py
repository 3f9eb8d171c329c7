"""The model of the peer benchmark (`python -m bench peers`), the same code in every target.

Every target, whatever serves it (izzati, FastAPI, LitServe, BentoML, each in its own venv), imports
this module, so all compute the same thing the same way; it needs only numpy. The checker in
bench/peers/workloads.py computes the expected replies from it too.

    W = numpy.random.default_rng(0).standard_normal((n, n), dtype=float32)   made once per process
    reply to {"x": [n floats]}: {"y": argmax(W @ x), "s": round(sum(W @ x), 3)}

A batch stacks the xs into one matrix and makes one pass over W (`X @ W.T`): what batching is for.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["SIZES", "weights", "vector", "reply", "predict", "predict_batch", "size_from_env"]

SIZES = {"P2": 1024, "P3": 4096}
"""n for each model workload: W is n x n float32 (4 MiB for P2, 64 MiB for P3)."""

Matrix = npt.NDArray[np.float32]


def weights(n: int) -> Matrix:
    """The model's weights, identical in every process and every tool."""
    return np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)


def vector(n: int, seed: int = 1) -> list[float]:
    """A request's x: n floats with 4 decimals (short JSON, parsed to the same float everywhere)."""
    values: list[float] = np.round(np.random.default_rng(seed).standard_normal(n), 4).tolist()
    return values


def reply(y: npt.NDArray[Any]) -> dict[str, Any]:
    """The reply for one output vector y = W @ x."""
    return {"y": int(y.argmax()), "s": round(float(y.sum()), 3)}


def predict(w: Matrix, x: Any) -> dict[str, Any]:
    """One request: W @ x."""
    return reply(w @ np.asarray(x, dtype=np.float32))


def predict_batch(w: Matrix, xs: Any) -> list[dict[str, Any]]:
    """A batch of requests (a list of xs, or an already stacked matrix): one pass over W."""
    ys = np.asarray(xs, dtype=np.float32) @ w.T
    return [reply(y) for y in ys]


def size_from_env() -> int:
    """n for this process, from BENCH_MODEL_N (set by bench/peers/targets.py)."""
    return int(os.environ["BENCH_MODEL_N"])
