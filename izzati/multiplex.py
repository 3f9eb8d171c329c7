"""Many models per process: `@izzati.multiplexed(max_models=N)` on a loader.

A request names its model with the `Izzati-Model` header (a job keeps it and runs with it); the
callback asks the loader for it, and the loader's cache answers: each process keeps the N models
used most recently, loads a model once even when concurrent requests ask for it first, and tears
down (`teardown()` or `close()`) the least recently used one to make room. A loader that raises
`KeyError` makes the request a 404 `unknown_model`.

    class Classifier:
        @izzati.multiplexed(max_models=3)
        def load(self, model_id):
            return load_weights(model_id)      # KeyError: no such model

        def __call__(self, text, data):
            model = self.load()                # the model the request names
            return model.predict(text["input"])

`self.load()` is `self.load(izzati.model_id())`; `self.load("other")` gets any model. The web side
sets the id (`current_model`) around each call (`izzati.modelcontext`: the per-call context);
nothing here imports the web stack.

A model evicted while a request or job still uses it is torn down when the last of them ends
(`holding()` around each call counts the models it got), never under it. A batch holds the calls
of one model (`izzati.batching`), and the models it gets, until its callback returns.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar, overload

from ._process import current_pid
from .exceptions import ModelRequired, UnknownModel
from .modelcontext import current_model, held_models, holding, model_id, using

__all__ = [
    "multiplexed",
    "model_id",
    "current_model",
    "holding",
    "using",
    "ModelCache",
    "HEADER",
    "valid_model_id",
    "MAX_ID_LENGTH",
]

logger = logging.getLogger("izzati")

M = TypeVar("M")

HEADER = "Izzati-Model"
"""The request header that names the model a request is for."""
MAX_ID_LENGTH = 256
"""The longest model id a request may name."""

IN_USE = False
"""Whether any multiplexed loader exists in this process (the web side reads the header only then)."""


def valid_model_id(value: str) -> str:
    """`value` as a model id (surrounding blanks removed), or `ModelRequired` when it cannot be one."""
    value = value.strip()
    if not value:
        raise ModelRequired(f"the {HEADER} header is empty: name a model")
    if len(value) > MAX_ID_LENGTH or not value.isprintable():
        shown = value[:40] + "..." if len(value) > 40 else value
        raise ModelRequired(f"{HEADER} {shown!r} is not a model id (printable, at most {MAX_ID_LENGTH} characters)")
    return value


def _release(model: Any, name: str, key: str) -> None:
    """Tear down an evicted model: its `teardown()`, else its `close()`; what it raises is logged."""
    for method in ("teardown", "close"):
        release = getattr(model, method, None)
        if callable(release):
            try:
                release()
            except Exception:
                logger.exception("%s: %s() of evicted model %r raised", name, method, key)
            return


class ModelCache(Generic[M]):
    """The models one loader holds in this process: the `max_models` most recently used.

    Arguments:
        loader: makes the model of an id; raises `KeyError` for an id it does not know.
        max_models: how many models to keep at once.
        name: the loader's name (in logs and the `loader` label of the metrics).
    """

    def __init__(self, loader: Callable[[str], M], max_models: int, name: str) -> None:
        self.loader = loader
        self.max_models = max_models
        self.name = name
        self._pid = current_pid()
        self._lock = threading.Lock()
        self._models: OrderedDict[str, M] = OrderedDict()
        self._loading: dict[str, Future[M]] = {}
        self._uses: dict[int, int] = {}  # id(model): the calls using it now
        self._evicted: dict[int, str] = {}  # id(model): the key of an evicted model still in use

    def __call__(self, model_id: str | None = None) -> M:
        """The model `model_id` names (default: the current request's), loaded if it is not held."""
        key = model_id if model_id is not None else current_model.get()
        if key is None:
            raise ModelRequired(f"{self.name} serves several models: name one with the {HEADER} header")
        if self._pid != current_pid():  # forked: the parent's models, lock and loads are the parent's
            self._pid, self._lock, self._models, self._loading = current_pid(), threading.Lock(), OrderedDict(), {}
            self._uses, self._evicted = {}, {}
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._hold(self._models[key])
            waiting = self._loading.get(key)
            if waiting is None:
                loading: Future[M] = Future()
                self._loading[key] = loading
        if waiting is not None:  # another call loads it: wait for that load (and its error), then take it
            waiting.result()
            return self(key)
        return self._load(key, loading)

    def _hold(self, model: M) -> M:
        """Count `model` as used by the current call until it ends (under the lock)."""
        held = held_models.get()
        if held is not None:
            self._uses[id(model)] = self._uses.get(id(model), 0) + 1
            held.append((self, model))
        return model

    def put_back(self, model: Any) -> None:
        """The current call is done with `model`: an evicted one no call uses any more is torn down."""
        with self._lock:
            left = self._uses.get(id(model), 0) - 1
            if left > 0:
                self._uses[id(model)] = left
                return
            self._uses.pop(id(model), None)
            evicted = self._evicted.pop(id(model), None)
        if evicted is not None:
            _release(model, self.name, evicted)

    def _load(self, key: str, loading: Future[M]) -> M:
        from .metrics.models import model_metrics

        metrics = model_metrics()
        started = time.perf_counter()
        try:
            model = self.loader(key)
        except BaseException as exc:
            error: BaseException = exc
            if isinstance(exc, KeyError) and not isinstance(exc, UnknownModel):
                error = UnknownModel(f"{self.name} has no model {key!r}")
                error.__cause__ = exc
            with self._lock:
                del self._loading[key]
            loading.set_exception(error)
            metrics.load_failures.labels(self.name).inc()
            if error is exc:
                raise
            raise error from exc
        with self._lock:
            del self._loading[key]
            self._models[key] = model
            self._hold(model)
            evicted, in_use = [], []
            while len(self._models) > self.max_models:
                old, model_out = self._models.popitem(last=False)
                if self._uses.get(id(model_out)):
                    self._evicted[id(model_out)] = old  # torn down when its last call ends
                    in_use.append(old)
                else:
                    evicted.append((old, model_out))
            resident = len(self._models)
        loading.set_result(model)
        logger.info("%s: loaded model %r in %.2f s (pid %d)", self.name, key, time.perf_counter() - started, self._pid)
        metrics.loads.labels(self.name).inc()
        for old in in_use:
            logger.info("%s: evicting model %r (least recently used; torn down when its calls end)", self.name, old)
            metrics.evictions.labels(self.name).inc()
        for old, model_out in evicted:
            logger.info("%s: evicting model %r (least recently used)", self.name, old)
            _release(model_out, self.name, old)
            metrics.evictions.labels(self.name).inc()
        metrics.resident.labels(self.name).set(resident)
        return model

    def resident(self) -> list[str]:
        """The ids of the models held in this process, least recently used first."""
        with self._lock:
            return list(self._models) if self._pid == current_pid() else []

    def clear(self) -> None:
        """Tear down every model held here (the callback's teardown, a test)."""
        with self._lock:
            held, self._models = list(self._models.items()), OrderedDict()
        for key, model in held:
            _release(model, self.name, key)
        if held:
            from .metrics.models import model_metrics

            model_metrics().resident.labels(self.name).set(0)


class _Multiplexed(Generic[M]):
    """A multiplexed loader: called, it is a module-level function's `ModelCache`; on a class, each
    instance gets its own cache of its bound loader."""

    def __init__(self, loader: Callable[..., M], max_models: int) -> None:
        functools.update_wrapper(self, loader)
        self.loader = loader
        self.max_models = max_models
        self.attribute = loader.__name__
        self.cache: ModelCache[M] = ModelCache(loader, max_models, f"{loader.__module__}:{loader.__qualname__}")

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Multiplexed[M]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> ModelCache[M]: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> ModelCache[M] | _Multiplexed[M]:
        if obj is None:
            return self
        bound = functools.partial(self.loader, obj)
        cache = ModelCache(bound, self.max_models, self.cache.name)
        # kept on the instance: the next `obj.load` finds it there (this is not a data descriptor)
        vars(obj)[self.attribute] = cache
        return cache

    def __call__(self, model_id: str | None = None) -> M:
        return self.cache(model_id)


def multiplexed(*, max_models: int = 3) -> Callable[[Callable[..., M]], _Multiplexed[M]]:
    """Make `loader(model_id)` (a function, or a method `load(self, model_id)`) a per-process cache of
    the `max_models` models used most recently; call it with no id for the current request's model."""
    if isinstance(max_models, bool) or not isinstance(max_models, int) or max_models < 1:
        raise ValueError(f"multiplexed(max_models={max_models!r}): it must be a whole number of at least 1")

    def decorate(loader: Callable[..., M]) -> _Multiplexed[M]:
        global IN_USE
        if not callable(loader):
            raise TypeError(f"@multiplexed decorates a loader function, not {type(loader).__name__}")
        if inspect.iscoroutinefunction(loader):  # its cache would hold coroutines, not models
            raise TypeError(f"@multiplexed: {loader.__qualname__} is async; make the loader a plain def")
        IN_USE = True
        return _Multiplexed(loader, max_models)

    return decorate
