"""The BentoML target of `python -m bench peers`, run from its own venv (.cache/venv-bentoml).

    BENCH_PROCESSES=N BENCH_MODEL_N=1024 [BENCH_BATCH=8] .cache/venv-bentoml/bin/bentoml serve \
        bench.targets.peer_bentoml:Echo|Model|BatchedModel --host 127.0.0.1 --port P

Written as BentoML's docs show: a `@bentoml.service` class whose `__init__` makes W once per
worker and whose `@bentoml.api` methods take the JSON fields as typed parameters. `workers=N`
from BENCH_PROCESSES, access log off (`logging.access.enabled: false`, like every target); its
other defaults stay (metrics on, 1 thread per worker). Every API is on `/`.

Batching is BentoML's own adaptive batching (`batchable=True, max_batch_size=8`): BentoML batches
requests that each carry a *batch*, so the batched API wraps the one x of `{"x": [...]}` into a
batch of one as it is validated and unwraps the one reply as it is serialised (two pydantic
hooks); the body and the reply stay those of every other target, and the method gets the stacked
xs to make one pass over W. BentoML has no "max wait" setting: its dispatcher picks the wait from
the latencies it measures, within `max_latency_ms` (left at its default, 60 s: a budget below the
time of one batch would refuse requests instead of waiting less).
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import bentoml
from pydantic import BeforeValidator, PlainSerializer

from bench.targets import peer_model

CONFIG: dict[str, Any] = {
    "workers": int(os.environ.get("BENCH_PROCESSES", "1")),
    "logging": {"access": {"enabled": False}},
}
BATCH = int(os.environ.get("BENCH_BATCH", "8"))


def one_batch(x: Any) -> Any:
    """The request's one x, as a batch of one."""
    return [x]


def the_one(replies: list[dict[str, Any]]) -> dict[str, Any]:
    """The reply of the request's batch of one."""
    return replies[0]


Batch = Annotated[list[list[float]], BeforeValidator(one_batch)]
Replies = Annotated[list[dict[str, Any]], PlainSerializer(the_one)]


@bentoml.service(**CONFIG)
class Echo:
    """P1: the fields back."""

    @bentoml.api(route="/")
    def echo(self, name: str, n: str) -> dict[str, str]:
        return {"name": name, "n": n}


@bentoml.service(**CONFIG)
class Model:
    """P2/P3: W made once per worker, one reply per x."""

    def __init__(self) -> None:
        self.w = peer_model.weights(peer_model.size_from_env())

    @bentoml.api(route="/")
    def predict(self, x: list[float]) -> dict[str, Any]:
        return peer_model.predict(self.w, x)


@bentoml.service(**CONFIG)
class BatchedModel:
    """P2/P3 with BentoML's adaptive batching: one pass over W per batch."""

    def __init__(self) -> None:
        self.w = peer_model.weights(peer_model.size_from_env())

    @bentoml.api(route="/", batchable=True, max_batch_size=BATCH)
    def predict(self, x: Batch) -> Replies:
        return peer_model.predict_batch(self.w, x)
