"""The model a call is for, and the models it holds: the per-call context of multiplexing
(`izzati.multiplex`). The web side sets it around each request, the job runner around each job, the
batcher around each batch; a cache (`multiplex.ModelCache`) reads the id and counts what it hands out."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any, Protocol

__all__ = ["current_model", "model_id", "holding", "using"]


class _Cache(Protocol):
    def put_back(self, model: Any) -> None: ...


current_model: contextvars.ContextVar[str | None] = contextvars.ContextVar("izzati_model", default=None)
"""The model id the current call is for, set around each request and job (None: none named)."""

held_models: contextvars.ContextVar[list[tuple[_Cache, Any]] | None] = contextvars.ContextVar(
    "izzati_models_held", default=None
)
"""The models the current call got from the caches (a plain callback's thread shares the list);
`multiplex.ModelCache` adds to it."""


@contextlib.contextmanager
def holding() -> Iterator[None]:
    """Around one request or job: every model it gets from a cache is kept from teardown until it
    ends; one evicted meanwhile is torn down then."""
    held: list[tuple[_Cache, Any]] = []
    token = held_models.set(held)
    try:
        yield
    finally:
        held_models.reset(token)
        for cache, model in held:
            cache.put_back(model)


@contextlib.contextmanager
def using(model: str | None) -> Iterator[None]:
    """Around one call for `model` (a job, a batch): `model_id()` names it, and the models the call
    gets are held (`holding()`)."""
    token = current_model.set(model)
    try:
        with holding():
            yield
    finally:
        current_model.reset(token)


def model_id() -> str | None:
    """The model id the current request or job names (`Izzati-Model`), or None."""
    return current_model.get()
