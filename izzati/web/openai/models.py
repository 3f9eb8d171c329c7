"""The models a service serves over the OpenAI-compatible endpoints: each a named chat or
embedding callback with its invoker (setup once per process, plain or async) and its batcher."""

from __future__ import annotations

import asyncio
import enum
import logging
import os
from collections.abc import Callable
from typing import Any

from ..._process import per_process
from ...batching import Batcher, rows
from ...chat import ChatRequest
from ...exceptions import CallbackError
from ...invoker import Invoker, describe
from ...metrics import RECORDER
from ...supervisor import State, report
from ..threadpool import CallbackPool, in_daemon_thread

__all__ = ["Kind", "ServedModel"]

logger = logging.getLogger("izzati")


class Kind(enum.StrEnum):
    """What a served model answers."""

    CHAT = "chat"
    EMBEDDINGS = "embeddings"


class ServedModel:
    """One named callback behind the OpenAI-compatible endpoints.

    Arguments:
        name: the model name clients send (`model`), listed by `GET /v1/models`.
        callback: a chat callback or an embedding callback (see `izzati.chat`).
        kind: which of the two.
        pool: the thread pool of this process, where plain callbacks run.
        metrics: count its batches (`izzati.metrics`).
    """

    def __init__(
        self, name: str, callback: Callable[..., Any], kind: Kind, pool: Callable[[], CallbackPool], metrics: bool
    ) -> None:
        self.name = name
        self.kind = kind
        self.invoker = Invoker(callback, inputs=("request",) if kind is Kind.CHAT else ("texts",))
        self.callback = self.invoker.callback
        self.describe = describe(self.callback)
        self.pool = pool
        self.metrics = metrics

    def _runner(self) -> CallbackPool | None:
        return None if self.invoker.is_async else self.pool()

    @per_process
    def batcher(self) -> Batcher:
        """Groups this process's calls into batches (a batch callback only)."""
        assert self.invoker.batch is not None

        async def run_batch(items: list[tuple[Any, Any]]) -> Any:
            return await self.invoker.call([item for item, _ in items], pool=self._runner())

        on_batch = RECORDER.batch if self.metrics else None
        return Batcher(self.invoker.batch, run_batch, self.describe, on_batch)

    @per_process
    def _setup(self) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(self._run_setup())

    async def _run_setup(self) -> None:
        try:
            # as a route's: a daemon thread (a hung setup must not keep the process from exiting), and a
            # failed one ends the process (its supervisor stops the service: a new one would fail the same)
            await in_daemon_thread(self.invoker.setup, "izzati-setup")
        except Exception:
            logger.critical("setup of %s raised: this server process exits", self.describe, exc_info=True)
            report(State.FAILED)
            os._exit(1)

    def start_setup(self) -> None:
        """Start the callback's setup in this process, off the event loop (once)."""
        if self.invoker.needs_setup:
            self._setup  # noqa: B018 - made on first use, once per process

    async def ready(self) -> None:
        """Wait until the callback is set up in this process."""
        if self.invoker.needs_setup and not self.invoker.ready:
            await asyncio.shield(self._setup)

    async def answer(self, request: ChatRequest) -> Any:
        """The chat callback's answer to `request`: a str, pieces, or an async generator."""
        if self.invoker.batch is not None:
            return await self.batcher.submit(request, None)
        return await self.invoker.call(request, pool=self._runner())

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text (for a batch callback, each text is an item of the batches)."""
        if self.invoker.batch is not None:
            vectors = list(await asyncio.gather(*(self.batcher.submit(text, None) for text in texts)))
        else:
            vectors = rows(await self.invoker.call(texts, pool=self._runner()))
        if not isinstance(vectors, (list, tuple)) or len(vectors) != len(texts):
            raise CallbackError(
                f"the embedding callback {self.describe} returned {type(vectors).__name__}; "
                f"return one vector per text ({len(texts)})"
            )
        return [_vector(vector, self.describe) for vector in vectors]


def _vector(value: Any, name: str) -> list[float]:
    if hasattr(value, "tolist"):  # numpy, torch
        value = value.tolist()
    try:
        return [float(x) for x in value]
    except (TypeError, ValueError):
        raise CallbackError(f"the embedding callback {name} returned a vector that is not a list of numbers") from None
