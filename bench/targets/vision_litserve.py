"""P4's LitServe target, run from its venv (.cache/venv-litserve): the server of LitServe's parity
test (`tests/parity_fastapi/ls-server.py`), rewritten here from reading it.

    .cache/venv-litserve/bin/python -m bench.targets.vision_litserve --port P [--processes N]

Its settings on CPU: `max_batch_size=8, batch_timeout=0.01`, `workers_per_device=2` (here
`--processes`, 2 in the test), `timeout=10`, `fast_queue=True`; `decode_request` passes the
base64 string on, `batch()` decodes the batch's images in a thread pool of `os.cpu_count()`
threads and stacks them, `predict` makes one pass, `unbatch` gives each request its class.
On `/` (like every target), no access log, log level warning.
"""

import argparse
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import litserve as ls
import torch

from bench.targets import peer_vision


class ImageClassifier(ls.LitAPI):  # type: ignore[misc]  # litserve lives in its own venv: Any to mypy
    def setup(self, device: Any) -> None:
        self.model = peer_vision.model(device)
        self.pool = ThreadPoolExecutor(os.cpu_count())

    def decode_request(self, request, **kwargs):  # type: ignore[no-untyped-def]
        return request["image_data"]

    def batch(self, inputs: Any) -> Any:
        return torch.stack(list(self.pool.map(peer_vision.decode, inputs)))

    def predict(self, x: Any, **kwargs: Any) -> Any:
        with torch.inference_mode():
            return self.model(x).argmax(dim=1)

    def unbatch(self, output: Any) -> Any:
        return output.tolist()

    def encode_response(self, output, **kwargs):  # type: ignore[no-untyped-def]
        return {"output": output}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--processes", type=int, default=2)
    opts = parser.parse_args()
    api = ImageClassifier(max_batch_size=peer_vision.BATCH, batch_timeout=peer_vision.WAIT_MS / 1000, api_path="/")
    server = ls.LitServer(api, accelerator="cpu", timeout=10, workers_per_device=opts.processes, fast_queue=True)
    server.run(host="127.0.0.1", port=opts.port, log_level="warning", generate_client_file=False, access_log=False)


if __name__ == "__main__":
    main()
