"""P4's izzati target: ResNet-18 on base64 JPEGs, izzati's own batching.

    python -m bench.targets.vision_izzati --port P [--processes N] [--max-concurrent C]

As a user serves a model with izzati (and as examples/resnet does): `setup()` builds the model
once per process; the callback is `@izzati.batched(max_size=8, max_wait_ms=10)` (the parity
test's batch and wait) and gets the batch's `(text, data)` pairs: it decodes the images on a thread
pool of `os.cpu_count()` threads (as LitServe's test server does in its `batch()`), stacks them and
makes one pass of the model.
`--max-concurrent C`: batches running at once per process (izzati's default when left out);
`--cpu-threads T`: `Backend.run(cpu_threads=T)` (izzati's default, `auto`, when left out: each of
N processes runs two batches at once on half its share of the cores each; 0 keeps torch's own
threads, one batch at a time).
No access log (like every target), log level warning.
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import izzati
from bench.targets import peer_vision
from izzati import Backend


def make(max_concurrent: int | None) -> Any:
    """The callback class, batching with `max_concurrent` (None: izzati's default)."""
    options: dict[str, Any] = {"max_size": peer_vision.BATCH, "max_wait_ms": peer_vision.WAIT_MS}
    if max_concurrent is not None:
        options["max_concurrent"] = max_concurrent

    class Classifier:
        """ResNet-18 built in setup(), one pass per batch."""

        def setup(self) -> None:
            self.model = peer_vision.model()
            self.pool = ThreadPoolExecutor(os.cpu_count())

        @izzati.batched(**options)
        def __call__(self, batch: list[tuple[dict[str, Any], list[Any]]]) -> list[Any]:
            images = list(self.pool.map(peer_vision.decode, [text["image_data"] for text, _ in batch]))
            return [{"output": c} for c in peer_vision.classify(self.model, images)]

    return Classifier


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--max-concurrent", type=int, help="batches at once per process (default: izzati's)")
    parser.add_argument("--cpu-threads", default="auto", help="torch threads per process (default: izzati's, auto)")
    opts = parser.parse_args()
    Backend(make(opts.max_concurrent), access_log=False).run(
        host="127.0.0.1", port=opts.port, workers=opts.processes, log_level="warning", cpu_threads=opts.cpu_threads
    )


if __name__ == "__main__":
    main()
