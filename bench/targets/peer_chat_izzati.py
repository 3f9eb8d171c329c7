"""The izzati target of the OpenAI workloads of `python -m bench peers` (C1 streamed chat, E1
embeddings), from the main environment.

    [BENCH_BATCH=8 BENCH_WAIT_MS=5] python -m bench.targets.peer_chat_izzati --port P --workload C1|E1
        [--processes N]

C1: `Backend(chat={"bench-lm": generate})`, the generator of bench/targets/chat_model.py as a chat
callback. E1: `Backend(embeddings={"bench-embed": Embedder})`, `@izzati.batched(max_size=8,
max_wait_ms=5)`, W made in `setup()`. No access log, log level warning, `workers=N`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

import izzati
from bench.targets import chat_model
from izzati import Backend, ChatRequest

BATCH = int(os.environ.get("BENCH_BATCH", "8"))
WAIT_MS = float(os.environ.get("BENCH_WAIT_MS", "5"))


def chat(request: ChatRequest) -> Iterator[str]:
    """C1: the shared generator."""
    return chat_model.generate(request.prompt)


class Embedder:
    """E1: W made once per process; one matrix product per batch of texts."""

    def setup(self) -> None:
        self.w = chat_model.weights()

    @izzati.batched(max_size=BATCH, max_wait_ms=WAIT_MS)
    def __call__(self, texts: list[str]) -> list[list[float]]:
        return chat_model.embed(self.w, texts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workload", choices=["C1", "E1"], required=True)
    parser.add_argument("--processes", type=int, default=1)
    opts = parser.parse_args()
    if opts.workload == "C1":
        backend = Backend(chat={"bench-lm": chat}, access_log=False)
    else:
        backend = Backend(embeddings={"bench-embed": Embedder}, access_log=False)
    backend.run(host="127.0.0.1", port=opts.port, workers=opts.processes, log_level="warning")


if __name__ == "__main__":
    main()
