"""The LitServe target of `python -m bench peers`, run from its own venv (.cache/venv-litserve).

    .cache/venv-litserve/bin/python -m bench.targets.peer_litserve --port P --workload P1|P2|P3
        [--processes N] [--batch 8 --wait-ms 5]

Written as LitServe's docs show: a `LitAPI` with `setup`, `decode_request`, `predict` and
`encode_response`; with `--batch`, LitServe's own batching (`LitAPI(max_batch_size=8,
batch_timeout=0.005)`) and a `batch()` that stacks the xs into one matrix, so `predict` makes one
pass over W. `--processes N` is `workers_per_device=N` (N inference worker processes; LitServe
then starts N API server processes too). On `/` (LitServe's default is `/predict`), no access log
(uvicorn's `access_log=False`, like every target), log level warning.
"""

import argparse
from typing import Any

import litserve as ls
import numpy as np

from bench.targets import peer_model


class Echo(ls.LitAPI):  # type: ignore[misc]  # litserve lives in its own venv: Any to mypy
    """P1: the JSON object back."""

    # LitServe reads the annotations of decode_request and encode_response to type its endpoint:
    # left out, it passes the parsed JSON body and sends the reply as JSON (its default path)
    def decode_request(self, request, **kwargs):  # type: ignore[no-untyped-def]
        return request

    def predict(self, x: Any, **kwargs: Any) -> Any:
        return x

    def encode_response(self, output, **kwargs):  # type: ignore[no-untyped-def]
        return output


class Model(ls.LitAPI):  # type: ignore[misc]
    """P2/P3: W made in setup(), one reply per x."""

    def __init__(self, n: int, **options: Any) -> None:
        super().__init__(**options)
        self.n = n

    def setup(self, device: Any) -> None:
        self.w = peer_model.weights(self.n)

    def decode_request(self, request, **kwargs):  # type: ignore[no-untyped-def]
        return np.asarray(request["x"], dtype=np.float32)

    def batch(self, inputs: Any) -> Any:
        return np.stack(inputs)

    def predict(self, x: Any, **kwargs: Any) -> Any:
        if x.ndim == 2:  # a batch: one pass over W for all of it
            return peer_model.predict_batch(self.w, x)
        return peer_model.predict(self.w, x)

    def unbatch(self, output: Any) -> Any:
        return output

    def encode_response(self, output, **kwargs):  # type: ignore[no-untyped-def]
        return output


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workload", choices=["P1", "P2", "P3"], required=True)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1, help="max batch size (1: no batching)")
    parser.add_argument("--wait-ms", type=float, default=5.0, help="batch timeout in ms")
    opts = parser.parse_args()
    options: dict[str, Any] = {"api_path": "/"}
    if opts.batch > 1:
        options.update(max_batch_size=opts.batch, batch_timeout=opts.wait_ms / 1000)
    api = Echo(**options) if opts.workload == "P1" else Model(peer_model.SIZES[opts.workload], **options)
    server = ls.LitServer(api, accelerator="cpu", devices=1, workers_per_device=opts.processes)
    server.run(host="127.0.0.1", port=opts.port, log_level="warning", generate_client_file=False, access_log=False)


if __name__ == "__main__":
    main()
