"""The model both targets of the OpenAI workloads serve (`python -m bench peers --only C1,E1`):
a text generator and an embedding function, identical in izzati and in LitServe.

- `generate(prompt)`: waits PREFILL_S (a model reading its prompt; a sleep, so it costs no CPU that
  the servers would fight over), then yields TOKENS pieces `"tok "` with no work between them: what
  is measured is how fast each server carries pieces to the client.
- `embed(texts)`: each text's byte histogram (256 floats) through one 256 x DIM float32 matrix,
  tanh; a batch is one matrix product.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import numpy as np

__all__ = ["TOKENS", "PREFILL_S", "DIM", "TOKEN", "generate", "weights", "embed", "own_first_token_ms"]

TOKENS = int(os.environ.get("BENCH_TOKENS", "128"))
PREFILL_S = float(os.environ.get("BENCH_PREFILL_MS", "20")) / 1000
DIM = 384
TOKEN = "tok "


def generate(prompt: str, tokens: int = TOKENS) -> Iterator[str]:
    """The generator: a prefill, then `tokens` pieces."""
    time.sleep(PREFILL_S)
    for _ in range(tokens):
        yield TOKEN


def own_first_token_ms(samples: int = 20) -> float:
    """The generator's own time to its first piece, median over `samples` (no server)."""
    took = []
    for _ in range(samples):
        started = time.perf_counter()
        next(generate("x"))
        took.append((time.perf_counter() - started) * 1000)
    return float(np.median(took))


def weights() -> np.ndarray:
    """The embedding matrix, the same in every process (a fixed seed)."""
    return np.random.default_rng(7).standard_normal((256, DIM)).astype(np.float32) / 16


def embed(w: np.ndarray, texts: list[str]) -> list[list[float]]:
    """One vector per text, in one matrix product."""
    counts = np.zeros((len(texts), 256), dtype=np.float32)
    for row, text in enumerate(texts):
        counts[row] = np.bincount(np.frombuffer(text.encode(), dtype=np.uint8), minlength=256)
    vectors: list[list[float]] = np.tanh(counts @ w).tolist()
    return vectors
