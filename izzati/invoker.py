"""The calling convention: how `text`, `data`, `q`, args and kwargs reach a callback, and what
it may return."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, cast

from . import devices
from ._process import current_pid
from .batching import BatchPolicy, resolve_policy
from .encoding import encode_json
from .typed.signature import Typed, read_signature

__all__ = ["Invoker", "ThreadRunner", "describe", "signature_problem", "encode_json"]

logger = logging.getLogger("izzati")


class ThreadRunner(Protocol):
    """Runs a plain call in another thread (the web side's thread pool)."""

    def run(self, call: Callable[[], Any]) -> Awaitable[Any]:
        """Schedule `call`; await the result."""
        ...


def describe(func: Callable[..., Any]) -> str:
    """Name a callable the way a user wrote it: `module:qualname` (an object by its class)."""
    if not hasattr(func, "__qualname__") and not isinstance(func, functools.partial):
        func = type(func)  # an instance with __call__, e.g. a model with setup()
    module = getattr(func, "__module__", None) or "?"
    name = getattr(func, "__qualname__", None) or repr(func)
    return f"{module}:{name}"


def _signature(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # some builtins have no introspectable signature
        return None


def signature_problem(
    func: Callable[..., Any], args: Iterable[Any], kwargs: Mapping[str, Any], shape: str
) -> str | None:
    """Why `func(*args, **kwargs)` cannot be called as `shape` says, or None when it can (or when
    its signature cannot be read)."""
    signature = _signature(func)
    if signature is None:
        return None
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        return f"{signature} cannot be called as {shape}: {exc}"
    return None


def _takes_one_argument(func: Callable[..., Any]) -> bool:
    """Whether `func` (a bound `setup`) takes a positional argument (the device)."""
    signature = _signature(func)
    if signature is None:
        return False
    try:
        signature.bind(None)
    except TypeError:
        return False
    return True


def _is_async(func: Callable[..., Any]) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


class Invoker:
    """Calls a callback as `callback([q,] text, data, *args, **kwargs)` and checks that it can.

    Arguments:
        callback: the user's function, plain or `async def`, or an object with `__call__` and a
            `setup()` to run once per process before any call (a class with `setup()` is made into
            one instance), and optionally `teardown()` at shutdown.
        args, kwargs: extra arguments after `text, data`, as in `Backend(callback, args, kwargs)`.
        queue: the queue handed to the callback, or None.
        queue_first: pass the queue as the first positional argument (`Backend(background=True)`).
            Otherwise a queue goes by name: first when the first parameter is named `q`, as `q=`
            when a later parameter is named `q` and nothing else fills it.
        batch_size, batch_wait_ms: call the callback with batches of up to `batch_size` requests,
            the first held at most `batch_wait_ms`: `callback([q,] [(text, data), ...], *args,
            **kwargs)`. Either one overrides what `@izzati.batched` put on the callback; with neither
            and no decorator, one call per request.
        inputs: the names of the positional inputs, for the signature check (default `text,
            data`, or `batch` for a batch callback), e.g. `("request",)` for a chat callback.
    """

    def __init__(
        self,
        callback: Callable[..., Any],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        queue: Any = None,
        queue_first: bool = False,
        batch_size: int | None = None,
        batch_wait_ms: float | None = None,
        inputs: Sequence[str] = (),
    ) -> None:
        if not callable(callback):
            raise TypeError(f"the callback must be callable, not {type(callback).__name__}: {callback!r}")
        if inspect.isclass(callback) and callable(getattr(callback, "setup", None)):
            callback = cast("Callable[..., Any]", callback())  # a class with setup(): one instance
        self.callback = callback
        self.batch: BatchPolicy | None = resolve_policy(callback, batch_size, batch_wait_ms)
        self.needs_setup = callable(getattr(callback, "setup", None))
        self.setup_takes_device = self.needs_setup and _takes_one_argument(getattr(callback, "setup"))  # noqa: B009
        self._setup_pid = 0
        self._lock_pid = 0
        self._lock = threading.Lock()
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.is_async = _is_async(callback)
        self.lead: tuple[Any, ...] = ()
        signature = _signature(callback)
        if queue is not None and not queue_first and signature is not None:
            names = list(signature.parameters)
            if names and names[0] == "q":
                queue_first = True
            elif "q" in names and "q" not in self.kwargs:
                try:
                    bound = signature.bind_partial(None, None, *self.args, **self.kwargs)
                except TypeError:
                    bound = None
                if bound is not None and "q" not in bound.arguments:
                    self.kwargs["q"] = queue
        if queue_first:
            self.lead = (queue,)
        # positional extras (`args`) belong to the classic shape: a typed callback takes its extras by name;
        # named `inputs` (a chat or embedding callback) are passed as they are
        self.typed: Typed | None = None
        if not self.args and not inputs:
            self.typed = read_signature(
                callback,
                skip_first=bool(self.lead),
                bound={*self.kwargs, *(("q",) if queue is not None else ())},
                batch=self.batch is not None,
            )
        if self.typed is not None:
            self._typed_queue(signature, queue)
            return
        inputs = ["batch"] if self.batch else list(inputs) or ["text", "data"]
        shape = ", ".join(
            (["q"] if self.lead else []) + inputs + ["<arg>"] * len(self.args) + [f"{key}=..." for key in self.kwargs]
        )
        placeholders = (None,) * len(inputs)
        problem = signature_problem(
            callback, (*self.lead, *placeholders, *self.args), self.kwargs, f"callback({shape})"
        )
        if problem is not None:
            raise TypeError(f"callback {describe(callback)}{problem}")

    def _typed_queue(self, signature: inspect.Signature | None, queue: Any) -> None:
        """A typed callback's `q` parameter (not first) takes the queue by name."""
        names = list(signature.parameters) if signature is not None else []
        if queue is not None and not self.lead and "q" in names and "q" not in self.kwargs:
            self.kwargs["q"] = queue

    def setup(self) -> None:
        """Run the callback's `setup()` once in this process, logging how long it took; a no-op
        for a callback without one. What setup() keeps on the object reaches every call here.
        A `setup(self, device)` gets this process's device (`izzati.devices.current()`), or the
        CPU for a callback marked `@izzati.on_device("cpu")`."""
        pid = current_pid()
        if not self.needs_setup or self._setup_pid == pid:
            return
        if self._lock_pid != pid:  # forked: a lock held by a thread of the parent stays held here
            self._lock, self._lock_pid = threading.Lock(), pid
        with self._lock:
            if self._setup_pid == pid:
                return
            name = describe(self.callback)
            device = devices.of(self.callback)
            logger.info(
                "setting up %s (pid %d, device %s)", name, pid, device if device == devices.CPU else devices.assigned()
            )
            started = time.perf_counter()
            setup = getattr(self.callback, "setup")  # noqa: B009 - checked callable in __init__
            setup(device) if self.setup_takes_device else setup()
            logger.info("setup of %s took %.2f s (pid %d)", name, time.perf_counter() - started, pid)
            self._setup_pid = pid

    @property
    def ready(self) -> bool:
        """Whether the callback can be called in this process (set up, or nothing to set up)."""
        return not self.needs_setup or self._setup_pid == current_pid()

    def teardown(self) -> None:
        """Run the callback's `teardown()`, if it has one and was set up in this process."""
        teardown = getattr(self.callback, "teardown", None)
        if self._setup_pid == current_pid() and callable(teardown):
            self._setup_pid = 0
            teardown()

    def call_sync(self, *inputs: Any) -> Any:
        """Call the callback in this thread with `inputs`: `text, data`, or a batch callback's list
        of them (a coroutine function is run to completion). A typed callback takes them
        validated (`izzati.typed.Validated`), or validates them here (a job's stored inputs)."""
        if self.typed is not None:
            result = self.callback(*self.lead, **self.typed.arguments(inputs), **self.kwargs)
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
            return self.typed.result(result)
        result = self.callback(*self.lead, *inputs, *self.args, **self.kwargs)
        if inspect.isawaitable(result):
            return asyncio.run(_await(result))
        return result

    async def call(self, *inputs: Any, pool: ThreadRunner | None) -> Any:
        """Call the callback with `inputs` (as `call_sync`): awaited when async, else in a thread
        of `pool`."""
        if self.typed is not None:
            return await self._call_typed(self.typed, inputs, pool)
        if self.is_async or pool is None:
            result = self.callback(*self.lead, *inputs, *self.args, **self.kwargs)
        else:
            result = await pool.run(functools.partial(self.callback, *self.lead, *inputs, *self.args, **self.kwargs))
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _call_typed(self, typed: Typed, inputs: tuple[Any, ...], pool: ThreadRunner | None) -> Any:
        call = functools.partial(self.callback, *self.lead, **typed.arguments(inputs), **self.kwargs)
        result = call() if self.is_async or pool is None else await pool.run(call)
        if inspect.isawaitable(result):
            result = await result
        return typed.result(result)


async def _await(awaitable: Any) -> Any:
    return await awaitable
