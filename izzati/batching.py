"""Dynamic batching: concurrent calls grouped into one call of a batch callback.

A batch callback takes a list of `(text, data)` pairs and returns one result per pair, in order.
A batch goes when it is full (`max_size`) or when its first call has waited `max_wait_ms`,
whichever comes first, so a lone call is never held longer than `max_wait_ms`.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from . import defaults
from .exceptions import CallbackError

__all__ = ["BatchPolicy", "batched", "batch_policy_of", "resolve_policy", "Batcher", "split_results"]

logger = logging.getLogger("izzati")

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__izzati_batch__"


@dataclasses.dataclass(frozen=True)
class BatchPolicy:
    """How calls are grouped: at most `max_size` per batch, the first held at most `max_wait_ms`."""

    max_size: int = defaults.BATCH_SIZE
    max_wait_ms: float = defaults.BATCH_WAIT_MS

    def __post_init__(self) -> None:
        if not isinstance(self.max_size, int) or self.max_size < 1:
            raise ValueError(f"a batch's max_size must be an integer of at least 1, not {self.max_size!r}")
        if not self.max_wait_ms >= 0:  # also refuses NaN
            raise ValueError(f"a batch's max_wait_ms must be 0 or more, not {self.max_wait_ms!r}")

    @property
    def max_wait(self) -> float:
        """`max_wait_ms` in seconds."""
        return self.max_wait_ms / 1000

    def replace(self, max_size: int | None = None, max_wait_ms: float | None = None) -> BatchPolicy:
        """This policy with the given fields changed (None: kept)."""
        return BatchPolicy(
            self.max_size if max_size is None else max_size,
            self.max_wait_ms if max_wait_ms is None else max_wait_ms,
        )


def batched(max_size: int = defaults.BATCH_SIZE, max_wait_ms: float = defaults.BATCH_WAIT_MS) -> Callable[[F], F]:
    """Mark a callback (a function, a method such as `__call__`, or a class) as taking batches:
    it gets a list of `(text, data)` and returns a list with one result per item, in order (an
    exception instance as an item's result fails only that item)."""
    policy = BatchPolicy(max_size, max_wait_ms)

    def mark(func: F) -> F:
        setattr(func, _MARK, policy)
        return func

    return mark


def batch_policy_of(callback: Any) -> BatchPolicy | None:
    """The policy `@batched` put on `callback` (on it, its class, or its `__call__`), or None."""
    policy = getattr(callback, _MARK, None)
    if policy is None:
        policy = getattr(getattr(callback, "__call__", None), _MARK, None)  # noqa: B004 - a decorated __call__
    return policy if isinstance(policy, BatchPolicy) else None


def resolve_policy(callback: Any, max_size: int | None, max_wait_ms: float | None) -> BatchPolicy | None:
    """The batching of `callback`: what `@batched` says, with `max_size`/`max_wait_ms` (from a
    keyword or a setting) overriding it; either one given batches an undecorated callback too."""
    policy = batch_policy_of(callback)
    if policy is None and max_size is None and max_wait_ms is None:
        return None
    return (policy or BatchPolicy()).replace(max_size, max_wait_ms)


def split_results(results: Any, count: int, name: str) -> list[Any]:
    """A batch callback's return value as one result per item; CallbackError if it is not a list
    (or tuple) of `count` results."""
    if not isinstance(results, list | tuple):
        raise CallbackError(
            f"the batch callback {name} returned a {type(results).__name__}; "
            f"return a list with one result per item ({count} items)"
        )
    if len(results) != count:
        raise CallbackError(
            f"the batch callback {name} returned {len(results)} results for {count} items; "
            "return one result per item, in order"
        )
    return list(results)


Pending = tuple[Any, Any, "asyncio.Future[Any]"]


class Batcher:
    """Groups the calls of one event loop into batches and runs each with `run_batch`.

    Arguments:
        policy: when a batch goes.
        run_batch: calls the batch callback with a list of `(text, data)`; awaited.
        name: the callback's name, for errors.
        on_batch: told each batch's size and how long its call took (metrics).
    """

    def __init__(
        self,
        policy: BatchPolicy,
        run_batch: Callable[[list[tuple[Any, Any]]], Awaitable[Any]],
        name: str,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self.policy = policy
        self.run_batch = run_batch
        self.name = name
        self.on_batch = on_batch
        self._pending: list[Pending] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, text: Any, data: Any) -> Any:
        """Add one call to the next batch; return its result (or raise its error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((text, data, future))
        if len(self._pending) >= self.policy.max_size:
            self._send()
        elif len(self._pending) == 1:
            # an empty context: the batch is nobody's request (so `cancelled()` in it is no one's)
            self._timer = loop.call_later(self.policy.max_wait, self._send, context=contextvars.Context())
        return await future

    def _send(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = [pending for pending in self._pending if not pending[2].done()]  # a hung-up call is dropped
        self._pending = []
        if not batch:
            return
        task = asyncio.get_running_loop().create_task(self._run(batch), context=contextvars.Context())
        self._running.add(task)  # a task nobody references can be collected mid-way
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: Sequence[Pending]) -> None:
        started = time.perf_counter()
        try:
            try:
                returned = await self.run_batch([(text, data) for text, data, _ in batch])
            finally:
                if self.on_batch is not None:
                    self.on_batch(len(batch), time.perf_counter() - started)
            results = split_results(returned, len(batch), self.name)
        except asyncio.CancelledError:
            for _, _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # the whole batch fails: every call gets this error
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue  # its caller went away
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
