"""The LitServe target of the OpenAI workloads of `python -m bench peers`, run from its own venv.

    .cache/venv-litserve/bin/python -m bench.targets.peer_chat_litserve --port P --workload C1|E1
        [--processes N] [--batch 8 --wait-ms 5]

Written as LitServe's docs show its specs: C1 a `LitAPI(spec=OpenAISpec())` whose `predict`
yields the pieces of bench/targets/chat_model.py's generator; E1 a `LitAPI(spec=OpenAIEmbeddingSpec(),
max_batch_size=8, batch_timeout=0.005)` whose `predict` gets the batch's texts and makes one
matrix product. `workers_per_device=N`, no access log, log level warning.
"""

import argparse
from typing import Any

import litserve as ls

from bench.targets import chat_model


class Chat(ls.LitAPI):  # type: ignore[misc]  # litserve lives in its own venv: Any to mypy
    """C1: the shared generator."""

    def predict(self, request: Any, context: Any) -> Any:
        prompt = request.messages[-1].content if hasattr(request, "messages") else ""
        yield from chat_model.generate(str(prompt))


class Embed(ls.LitAPI):  # type: ignore[misc]
    """E1: W made in setup(); one matrix product per batch."""

    def setup(self, device: Any) -> None:
        self.w = chat_model.weights()

    def predict(self, inputs: Any) -> Any:
        texts = [inputs] if isinstance(inputs, str) else [t if isinstance(t, str) else t[0] for t in inputs]
        return chat_model.embed(self.w, texts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workload", choices=["C1", "E1"], required=True)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--wait-ms", type=float, default=5.0)
    opts = parser.parse_args()
    if opts.workload == "C1":
        api = Chat(spec=ls.OpenAISpec())
    else:
        api = Embed(spec=ls.OpenAIEmbeddingSpec(), max_batch_size=opts.batch, batch_timeout=opts.wait_ms / 1000)
    server = ls.LitServer(api, accelerator="cpu", devices=1, workers_per_device=opts.processes)
    server.run(host="127.0.0.1", port=opts.port, log_level="warning", generate_client_file=False, access_log=False)


if __name__ == "__main__":
    main()
