"""Dynamic batching: concurrent calls grouped into one call of a batch callback.

A batch callback takes a list of `(text, data)` pairs and returns one result per pair, in order.
A batch goes when it is full (`max_size`) or when its first call has waited `max_wait_ms`,
whichever comes first, so a lone call is never held longer than `max_wait_ms`.

With multiplexed models (`izzati.multiplexed`), a batch holds the calls of one model: the calls
that name different models (`Izzati-Model`) wait in separate batches, `izzati.model_id()` in the
batch callback is the batch's model, and the models it loads are kept from teardown until it returns.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from . import defaults, multiplex, threads
from .exceptions import BatchFailed, CallbackError, HTTPError

__all__ = ["BatchPolicy", "batched", "batch_policy_of", "resolve_policy", "Batcher", "split_results"]

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__izzati_batch__"

_MAX_LOGGED = 16384  # characters of a failed batch's traceback in the log: its head and its tail

logger = logging.getLogger("izzati")


@dataclasses.dataclass(frozen=True)
class BatchPolicy:
    """How calls are grouped: at most `max_size` per batch, the first held at most `max_wait_ms`
    (when no batch is running), at most `max_concurrent` batches running at once (None: as many
    as keep the process's share of the cores busy, `izzati.threads.batches_at_once`)."""

    max_size: int = defaults.BATCH_SIZE
    max_wait_ms: float = defaults.BATCH_WAIT_MS
    max_concurrent: int | None = defaults.BATCH_CONCURRENCY

    def __post_init__(self) -> None:
        if not isinstance(self.max_size, int) or self.max_size < 1:
            raise ValueError(f"a batch's max_size must be an integer of at least 1, not {self.max_size!r}")
        if not self.max_wait_ms >= 0:  # also refuses NaN
            raise ValueError(f"a batch's max_wait_ms must be 0 or more, not {self.max_wait_ms!r}")
        if self.max_concurrent is not None and (not isinstance(self.max_concurrent, int) or self.max_concurrent < 1):
            raise ValueError(f"max_concurrent must be None or an integer of at least 1, not {self.max_concurrent!r}")

    @property
    def max_wait(self) -> float:
        """`max_wait_ms` in seconds."""
        return self.max_wait_ms / 1000

    def replace(self, max_size: int | None = None, max_wait_ms: float | None = None) -> BatchPolicy:
        """This policy with the given fields changed (None: kept)."""
        return dataclasses.replace(
            self,
            max_size=self.max_size if max_size is None else max_size,
            max_wait_ms=self.max_wait_ms if max_wait_ms is None else max_wait_ms,
        )


def batched(
    max_size: int = defaults.BATCH_SIZE,
    max_wait_ms: float = defaults.BATCH_WAIT_MS,
    max_concurrent: int | None = defaults.BATCH_CONCURRENCY,
) -> Callable[[F], F]:
    """Mark a callback (a function, a method such as `__call__`, or a class) as taking batches:
    it gets a list of `(text, data)` and returns a list with one result per item, in order (an
    exception instance as an item's result fails only that item). At most `max_concurrent`
    batches run at once per process; None (the default): as many as keep the process's share of
    the cores busy without oversubscribing them (one when a batch's numeric library uses every
    core, as torch and BLAS do by default; `izzati.threads.batches_at_once`). `max_concurrent=1`:
    a callback that must not run twice at once."""
    policy = BatchPolicy(max_size, max_wait_ms, max_concurrent)

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


def rows(value: Any) -> Any:
    """A numpy array or torch tensor (what `model.predict(batch)` returns) as the list of its rows;
    anything else as it is."""
    if not isinstance(value, list | tuple) and hasattr(value, "tolist") and getattr(value, "ndim", 0) >= 1:
        return list(value)
    return value


def split_results(results: Any, count: int, name: str) -> list[Any]:
    """A batch callback's return value as one result per item; CallbackError if it is not a list
    (or tuple, or a numpy array / torch tensor: its rows) of `count` results."""
    results = rows(results)
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


Pending = tuple[Any, Any, "asyncio.Future[Any]", float]
"""A call waiting for its batch: text, data, its result to come, when it came (loop time)."""


class Batcher:
    """Groups the calls of one event loop into batches and runs each with `run_batch`, at most
    `concurrent` at a time (calls that come meanwhile wait for the next batch). The calls of
    different multiplexed models wait apart (a batch is for one model); batches that are due go
    in the order they became due, so the models take turns.

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
        self._pending: dict[str | None, list[Pending]] = {}  # per model (None: none named), oldest first
        self._timers: dict[str | None, asyncio.TimerHandle] = {}
        self._due: dict[str | None, None] = {}  # the models whose next batch is due, in the order they became so
        self._running: set[asyncio.Task[None]] = set()
        self.concurrent = policy.max_concurrent or threads.batches_at_once()
        """Batches at once here: the policy's, or as many as keep this process's cores busy."""

    async def submit(self, text: Any, data: Any) -> Any:
        """Add one call to the next batch of its model (the current request's, `izzati.model_id()`);
        return its result (or raise its error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        model = multiplex.current_model.get() if multiplex.IN_USE else None
        pending = self._pending.setdefault(model, [])
        pending.append((text, data, future, loop.time()))
        if len(pending) >= self.policy.max_size:
            self._ready(model)
        elif len(pending) == 1:
            self._start_timer(loop, model, self.policy.max_wait)
        return await future

    def _start_timer(self, loop: asyncio.AbstractEventLoop, model: str | None, delay: float) -> None:
        # an empty context: the batch is nobody's request (so `cancelled()` in it is no one's)
        self._timers[model] = loop.call_later(max(delay, 0.0), self._ready, model, context=contextvars.Context())

    def _ready(self, model: str | None) -> None:
        timer = self._timers.pop(model, None)
        if timer is not None:
            timer.cancel()
        self._due[model] = None
        self._send()

    def _send(self) -> None:
        """Start the due batches there is room for; the next one's clock runs from its first call."""
        loop = asyncio.get_running_loop()
        while self._due and len(self._running) < self.concurrent:
            model = next(iter(self._due))
            del self._due[model]
            live = [pending for pending in self._pending.pop(model, []) if not pending[2].done()]  # hung up: dropped
            batch, rest = live[: self.policy.max_size], live[self.policy.max_size :]
            if rest:
                self._pending[model] = rest
                if len(rest) >= self.policy.max_size:
                    self._due[model] = None  # due again, after the other models' due batches
                elif model not in self._timers:
                    self._start_timer(loop, model, rest[0][3] + self.policy.max_wait - loop.time())
            if not batch:
                continue
            task = loop.create_task(self._run(batch, model), context=contextvars.Context())
            self._running.add(task)  # a task nobody references can be collected mid-way
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._send()

    def _failed(self, exc: Exception, size: int) -> BatchFailed:
        """Log what the batch callback raised, once for the batch and at most `_MAX_LOGGED`
        characters (a message can be megabytes), and make the error each call of it gets."""
        text = "".join(traceback.format_exception(exc))
        if len(text) > _MAX_LOGGED:
            half = _MAX_LOGGED // 2
            text = f"{text[:half]}\n... ({len(text) - 2 * half} characters left out) ...\n{text[-half:]}"
        kind = type(exc).__name__
        logger.error("batch callback %s raised %s (a batch of %d calls):\n%s", self.name, kind, size, text)
        failed = BatchFailed(f"the callback raised {kind}")
        failed.__cause__ = exc
        return failed

    async def _call(self, batch: Sequence[Pending], model: str | None) -> Any:
        items = [(text, data) for text, data, _, _ in batch]
        if not multiplex.IN_USE:
            return await self.run_batch(items)
        with multiplex.using(model):  # the models it gets are not torn down under it
            return await self.run_batch(items)

    async def _run(self, batch: Sequence[Pending], model: str | None) -> None:
        started = time.perf_counter()
        try:
            try:
                returned = await self._call(batch, model)
            finally:
                if self.on_batch is not None:
                    self.on_batch(len(batch), time.perf_counter() - started)
            results = split_results(returned, len(batch), self.name)
        except asyncio.CancelledError:
            for _, _, future, _ in batch:
                future.cancel()
            raise
        except Exception as exc:  # the whole batch fails: every call gets this error
            error = exc if isinstance(exc, HTTPError) else self._failed(exc, len(batch))
            for _, _, future, _ in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, _, future, _), result in zip(batch, results, strict=True):
            if future.done():
                continue  # its caller went away
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
