"""The izzati target of `python -m bench peers`: the repository's izzati, from the main environment.

    BENCH_MODEL_N=n python -m bench.targets.peer_izzati --port P --workload P1|P2|P3
        [--processes N] [--batch 8 --wait-ms 5]

As the README serves a model: a class whose `setup()` makes W once per process and whose
`__call__(text, data)` answers; a JSON object POSTed to `/` arrives as `text`. With `--batch`,
izzati's own batching (bench/targets/peer_izzati_batched.py). `Backend.run(workers=N)`;
`access_log=False` (no access log, like every target), log level warning.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from bench.targets import peer_model
from izzati import Backend


def echo(text: dict[str, Any], data: list[Any]) -> Any:
    """P1: the JSON object back."""
    return text


class Model:
    """P2/P3: W made in setup(), one reply per request."""

    def setup(self) -> None:
        self.w = peer_model.weights(peer_model.size_from_env())

    def __call__(self, text: dict[str, Any], data: list[Any]) -> Any:
        return peer_model.predict(self.w, text["x"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workload", choices=["P1", "P2", "P3"], required=True)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1, help="max batch size (1: no batching)")
    parser.add_argument("--wait-ms", type=float, default=5.0, help="longest wait for a batch to fill, ms")
    opts = parser.parse_args()
    callback: Any = echo
    if opts.workload != "P1":
        callback = Model
        if opts.batch > 1:  # imported only here: izzati.batched is newer than the rest of this bench
            os.environ.update(BENCH_BATCH=str(opts.batch), BENCH_WAIT_MS=str(opts.wait_ms))
            from bench.targets.peer_izzati_batched import BatchedModel

            callback = BatchedModel
    Backend(callback, access_log=False).run(
        host="127.0.0.1", port=opts.port, workers=opts.processes, log_level="warning"
    )


if __name__ == "__main__":
    main()
