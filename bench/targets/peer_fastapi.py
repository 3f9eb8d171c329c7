"""The hand-written FastAPI baseline of `python -m bench peers`, from the main environment.

    BENCH_WORKLOAD=P1|P2|P3 BENCH_MODEL_N=n python -m bench.targets.peer_fastapi --port P [--processes N]

Written the way a FastAPI user would: a pydantic model for the JSON body, a plain `def` endpoint
(Starlette's thread pool, like izzati's plain callback), W made once per process when the app is
built. uvicorn with `--workers N` (an app factory, so each worker process builds its own), no
access log (`--no-access-log`, like every target), log level warning. FastAPI has no batching of
its own: it serves the unbatched rows only.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from bench.targets import peer_model


class Person(BaseModel):
    """P1's body."""

    name: str
    n: str


class Features(BaseModel):
    """P2/P3's body."""

    x: list[float]


def app() -> FastAPI:
    """The app for BENCH_WORKLOAD (a factory: uvicorn calls it in every worker process)."""
    api = FastAPI()
    if os.environ["BENCH_WORKLOAD"] == "P1":

        @api.post("/")
        def echo(body: Person) -> dict[str, str]:
            return {"name": body.name, "n": body.n}

    else:
        w = peer_model.weights(peer_model.size_from_env())

        @api.post("/")
        def predict(body: Features) -> dict[str, Any]:
            return peer_model.predict(w, body.x)

    return api


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--processes", type=int, default=1)
    opts = parser.parse_args()
    target = "bench.targets.peer_fastapi:app"
    uvicorn.run(
        target,
        factory=True,
        host="127.0.0.1",
        port=opts.port,
        workers=opts.processes,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
