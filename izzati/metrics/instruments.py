"""prometheus-client's metrics for what `Recorder` gathers, and how its figures are written in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

from . import BATCH_BUCKETS, DURATION_BUCKETS

if TYPE_CHECKING:
    from . import _Histogram

__all__ = ["Instruments", "instruments", "made_in"]


def _add(histogram: Histogram, figures: _Histogram) -> None:
    # prometheus-client observes one value at a time; many at once means adding to its buckets
    # (kept per bucket, not cumulative, as its observe() does) and its sum directly
    for bucket, count in zip(histogram._buckets, figures.counts, strict=True):
        if count:
            bucket.inc(count)
    histogram._sum.inc(figures.total)


class Instruments:
    """The metrics of one process (made once, after the multiprocess mode is chosen)."""

    def __init__(self) -> None:
        # the mode the values were made in decides how a scrape reads them (a process that chose
        # multiprocess mode after making them keeps them in memory)
        self.folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        self.requests = Counter(
            "izzati_requests", "HTTP requests answered, by route, method and status", ["route", "method", "status"]
        )
        self.request_seconds = Histogram(
            "izzati_request_duration_seconds",
            "Time from a request's headers to the end of its reply, by route",
            ["route"],
            buckets=DURATION_BUCKETS,
        )
        self.callback_seconds = Histogram(
            "izzati_callback_duration_seconds",
            "Time a callback took: web (a request, including a batch's wait), job, or batch (one batch call)",
            ["where"],
            buckets=DURATION_BUCKETS,
        )
        self.batch_size = Histogram(
            "izzati_batch_size", "Calls per batch sent to a batch callback", buckets=BATCH_BUCKETS
        )
        self.inflight = Gauge(
            "izzati_requests_in_flight", "HTTP requests being answered now", multiprocess_mode="livesum"
        )
        self.taken = Counter("izzati_queue_items_taken", "Items workers took from the queue", ["queue"])

    def write(
        self,
        requests: Mapping[tuple[str, str, int], int],
        durations: Mapping[str, _Histogram],
        callbacks: Mapping[str, _Histogram],
        batches: _Histogram,
        taken: Mapping[str, int],
        inflight: int,
    ) -> None:
        """Add one flush's figures."""
        for (route, method, status), count in requests.items():
            self.requests.labels(route, method, str(status)).inc(count)
        for route, figures in durations.items():
            _add(self.request_seconds.labels(route), figures)
        for where, figures in callbacks.items():
            _add(self.callback_seconds.labels(where), figures)
        if any(batches.counts):
            _add(self.batch_size, batches)
        for queue, count in taken.items():
            self.taken.labels(queue).inc(count)
        self.inflight.set(inflight)


_instruments: Instruments | None = None


def instruments() -> Instruments:
    """The metrics of this interpreter, made on first use (a forked child keeps its parent's:
    in multiprocess mode each value moves to the child's own file at its first change)."""
    global _instruments
    if _instruments is None:
        _instruments = Instruments()
    return _instruments


def made_in() -> str | None:
    """The multiprocess folder this process's metrics write to; None: in memory (one process).
    Before they are made: the folder they will use."""
    if _instruments is not None:
        return _instruments.folder
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
