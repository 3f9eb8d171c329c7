"""Metrics: what a service and its workers do, for Prometheus (made with prometheus-client).

The hot path only adds to plain numbers in this process (`RECORDER`); they are written into
prometheus-client's metrics at most every `FLUSH_SECONDS` (by a server's event loop, or a thread
in a worker), and a scrape flushes its own process first and waits for the others' writes. With
several processes (`IZZATI_WORKERS=N`, the memory:// worker and job runner) prometheus-client's
multiprocess mode sums them, so they report once.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "DURATION_BUCKETS",
    "BATCH_BUCKETS",
    "FLUSH_SECONDS",
    "Recorder",
    "RECORDER",
    "prepare_multiprocess",
    "route_of",
    "label_routes",
    "CALLBACK_SECONDS",
]

DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds (seconds) of the request and callback duration histograms (+Inf is added)."""
BATCH_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)
"""Upper bounds of the batch size histogram (+Inf is added)."""
FLUSH_SECONDS = 0.025
"""How long a process keeps new figures before writing them for a scrape."""

CALLBACK_SECONDS = "izzati.callback_seconds"
"""The ASGI scope key where the endpoint leaves how long the callback took, for its request's count."""

_ROUTES = {"/": "/", "/jobs": "/jobs", "/health": "/health", "/ready": "/ready", "/metrics": "/metrics"}


def label_routes(paths: Iterable[str]) -> None:
    """Count requests to these paths (a service's routes) under their own `route` label."""
    _ROUTES.update((path, path) for path in paths)


def route_of(path: str) -> str:
    """The route a request path belongs to, as a label with few values (ids are not labels)."""
    route = _ROUTES.get(path)
    if route is not None:
        return route
    if path.startswith("/jobs/"):
        tail = path[6:].partition("/")[2]
        return "/jobs/{id}" if not tail else f"/jobs/{{id}}/{tail}" if tail in ("result", "events") else "other"
    return "other"


class _Histogram:
    """Counts per bucket and a sum, as prometheus-client's multiprocess files keep them."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


def _observe(table: dict[str, _Histogram], key: str, seconds: float) -> None:
    histogram = table.get(key)
    if histogram is None:
        histogram = table[key] = _Histogram(DURATION_BUCKETS)
    histogram.observe(seconds)


class Recorder:
    """This process's figures since the last flush, and the thread that writes them out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.inflight = 0
        self._written_inflight = 0
        self._reset()

    def _reset(self) -> None:
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self.durations: dict[str, _Histogram] = {}
        self.callbacks: dict[str, _Histogram] = {}
        self.batches = _Histogram(BATCH_BUCKETS)
        self.taken: defaultdict[str, int] = defaultdict(int)
        self.dirty = False

    def _changed(self) -> None:
        if not self.dirty:
            self.dirty = True
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # a worker's or job runner's thread: the flushing thread writes
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="izzati-metrics", daemon=True)
                    self._thread.start()
                self._wake.set()
            else:  # a server's event loop writes them itself: no thread taking the GIL from it
                loop.call_later(FLUSH_SECONDS, self.flush)

    def begin(self) -> None:
        """A request starts (in flight); called from the event loop's thread only (no lock: the
        count is written when the request ends, or by a scrape in this process)."""
        self.inflight += 1

    def request(self, route: str, method: str, status: int, seconds: float, callback: float | None = None) -> None:
        """A request ended with `status` after `seconds`, `callback` of them in the callback."""
        with self._lock:  # one lock per request (see `python -m bench metrics`)
            self.inflight -= 1
            self.requests[route, method, status] += 1
            _observe(self.durations, route, seconds)
            if callback is not None:
                _observe(self.callbacks, "web", callback)
            self._changed()

    def callback(self, where: str, seconds: float) -> None:
        """A callback call (or a batch) took `seconds`; `where`: web, job or batch."""
        with self._lock:
            _observe(self.callbacks, where, seconds)
            self._changed()

    def batch(self, size: int, seconds: float) -> None:
        """A batch of `size` calls went to the callback, which took `seconds`."""
        with self._lock:
            self.batches.observe(size)
            _observe(self.callbacks, "batch", seconds)
            self._changed()

    def took(self, queue: str) -> None:
        """A worker took an item from `queue`."""
        with self._lock:
            self.taken[queue] += 1
            self._changed()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(FLUSH_SECONDS)  # gather what comes meanwhile into one write
            self.flush()

    def flush(self) -> None:
        """Write this process's figures since the last flush into prometheus-client's metrics."""
        with self._lock:
            if not self.dirty and self.inflight == self._written_inflight:
                return
            self._wake.clear()
            requests, durations, callbacks = self.requests, self.durations, self.callbacks
            batches, taken, inflight = self.batches, self.taken, self.inflight
            self._written_inflight = inflight
            self._reset()
        from .instruments import instruments

        instruments().write(requests, durations, callbacks, batches, taken, inflight)

    def forked(self) -> None:
        """Start afresh in a forked child: the parent's figures and thread stay the parent's."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        self.inflight = self._written_inflight = 0
        self._reset()


RECORDER = Recorder()
"""This process's recorder."""
os.register_at_fork(after_in_child=RECORDER.forked)

_made_dir: tuple[int, str] | None = None
_prepared = False


def prepare_multiprocess() -> str:
    """Before the processes of a service start: use prometheus-client's multiprocess mode in
    PROMETHEUS_MULTIPROC_DIR (emptied, as prometheus-client asks) or else in a private folder
    removed at exit, so the processes' figures are summed. Once per process tree: the children
    it starts inherit the folder. Returns the folder."""
    global _made_dir, _prepared
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if _prepared and path:
        return path
    _prepared = True
    if path:
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):  # figures of an earlier run would be summed with ours
            with contextlib.suppress(OSError):
                stale.unlink()
    else:
        path = tempfile.mkdtemp(prefix="izzati-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        _made_dir = (os.getpid(), path)
        atexit.register(_remove_made_dir)
    if "prometheus_client" in sys.modules:
        # imported before the folder was set: switch its values to files now (metrics made from
        # here on use them; izzati makes its own lazily, after this)
        from prometheus_client import values

        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    return path


def _remove_made_dir() -> None:
    if _made_dir is not None and _made_dir[0] == os.getpid():
        shutil.rmtree(_made_dir[1], ignore_errors=True)
