"""The izzati target of `python -m bench peers`: the repository's izzati, from the main environment.

    [BENCH_MODEL_N=n BENCH_BATCH=8 BENCH_WAIT_MS=5] python -m bench.targets.peer_izzati --port P
        --workload P1|P2|P3 [--processes N] [--batched]

As the README serves a model: a class whose `setup()` makes W once per process and whose
`__call__(text, data)` answers; a JSON object POSTed to `/` arrives as `text`. With `--batch`,
izzati's own batching, `@izzati.batched(max_size=8, max_wait_ms=5)` (BENCH_BATCH, BENCH_WAIT_MS):
`__call__` gets the batch's `(text, data)` pairs in arrival order and stacks their xs into one
matrix, one pass over W, one reply per pair. `Backend.run(workers=N)`;
`access_log=False` (no access log, like every target), log level warning.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import izzati
from bench.targets import peer_model
from izzati import Backend

BATCH = int(os.environ.get("BENCH_BATCH", "8"))
WAIT_MS = float(os.environ.get("BENCH_WAIT_MS", "5"))


def echo(text: dict[str, Any], data: list[Any]) -> Any:
    """P1: the JSON object back."""
    return text


async def echo_async(text: dict[str, Any], data: list[Any]) -> Any:
    """P1 with an `async def` callback (`--async`): awaited on the event loop, no thread."""
    return text


class Model:
    """P2/P3: W made in setup(), one reply per request."""

    def setup(self) -> None:
        self.w = peer_model.weights(peer_model.size_from_env())

    def __call__(self, text: dict[str, Any], data: list[Any]) -> Any:
        return peer_model.predict(self.w, text["x"])


class BatchedModel:
    """P2/P3 with izzati's batching: W made in setup(), one pass over it per batch."""

    def setup(self) -> None:
        self.w = peer_model.weights(peer_model.size_from_env())

    @izzati.batched(max_size=BATCH, max_wait_ms=WAIT_MS)
    def __call__(self, batch: list[tuple[dict[str, Any], list[Any]]]) -> list[Any]:
        return peer_model.predict_batch(self.w, [text["x"] for text, _ in batch])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workload", choices=["P1", "P2", "P3"], required=True)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--batched", action="store_true", help="izzati's batching (BENCH_BATCH, BENCH_WAIT_MS)")
    parser.add_argument("--async", dest="use_async", action="store_true", help="P1: an async def callback")
    opts = parser.parse_args()
    callback: Any = echo_async if opts.use_async else echo
    if opts.workload != "P1":
        callback = BatchedModel if opts.batched else Model
    Backend(callback, access_log=False).run(
        host="127.0.0.1", port=opts.port, workers=opts.processes, log_level="warning"
    )


if __name__ == "__main__":
    main()
