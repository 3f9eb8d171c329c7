"""A scrape: this process's figures flushed, every process's summed (multiprocess mode), and what
the queues and the job store hold now, in the Prometheus text format."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from ..jobs.model import JobStatus
from ..jobs.store import records
from . import RECORDER
from .instruments import made_in

__all__ = ["Scrape", "exposition", "registry_of", "CONTENT_TYPE"]

logger = logging.getLogger("izzati")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text format's media type."""

_QUEUE_FIGURES = (
    ("length", "izzati_queue_length", "Items in the queue: waiting, or taken and not yet acknowledged"),
    ("lag", "izzati_queue_lag", "Items no worker has taken yet (the consumer group's lag): the backlog"),
    ("pending", "izzati_queue_pending", "Items taken by workers and not yet acknowledged"),
    ("oldest_age", "izzati_queue_oldest_age_seconds", "Seconds the oldest item no worker has taken has waited"),
)


class Scrape:
    """The collector of one scrape target: a web process (the service) or a worker.

    Arguments:
        queues: the queues to report (the items queue, the jobs queue) as `(label, queue, live)`:
            `live()` counts the processes that take from it when the queue cannot tell (memory://).
        store: the job store whose jobs are counted by state (None: no jobs here).
    """

    def __init__(
        self,
        queues: Sequence[tuple[str, Any, Callable[[], int] | None]] = (),
        store: Any = None,
    ) -> None:
        self.queues = list(queues)
        self.store = store

    def collect(self) -> Iterator[Metric]:
        """Every family of this target, now."""
        RECORDER.flush()
        folder = made_in()
        if folder is not None:
            yield from MultiProcessCollector(None, path=folder).collect()  # type: ignore[no-untyped-call]
        else:
            yield from REGISTRY.collect()
        yield from self._queues()
        if self.store is not None:
            yield self._jobs()

    def _queues(self) -> Iterator[Metric]:
        families = {name: GaugeMetricFamily(name, text, labels=["queue"]) for _, name, text in _QUEUE_FIGURES}
        up = GaugeMetricFamily("izzati_queue_up", "1 when the queue's broker answered this scrape", labels=["queue"])
        dead = GaugeMetricFamily("izzati_dead_letters", "Items parked as dead letters", labels=["queue"])
        workers = GaugeMetricFamily("izzati_workers_live", "Worker processes alive (fresh heartbeat)", labels=["queue"])
        for name, queue, live in self.queues:
            try:
                stats = queue.stats() if hasattr(queue, "stats") else {"length": queue.qsize()}
                for key, family_name, _ in _QUEUE_FIGURES:
                    if key in stats:
                        families[family_name].add_metric([name], float(stats[key]))
                if hasattr(queue, "dead_letters"):
                    dead.add_metric([name], float(queue.dead_letters.count()))
                if hasattr(queue, "workers_alive"):
                    workers.add_metric([name], float(queue.workers_alive()))
                elif live is not None:
                    workers.add_metric([name], float(live()))
                up.add_metric([name], 1.0)
            except Exception as exc:  # a scrape reports the broker down, it does not fail
                logger.warning("metrics: queue %r did not answer: %s", name, exc)
                up.add_metric([name], 0.0)
        yield from families.values()
        yield from (up, dead, workers)

    def _jobs(self) -> Metric:
        family = GaugeMetricFamily("izzati_jobs", "Jobs kept in the job store, by state", labels=["state"])
        counts = Counter(str(record["status"]) for record in records(self.store))
        for state in JobStatus:
            family.add_metric([str(state)], float(counts[str(state)]))
        return family


def registry_of(scrape: Scrape) -> CollectorRegistry:
    """A prometheus-client registry that collects `scrape` (for its exposition or its server)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(scrape)
    return registry


def exposition(scrape: Scrape) -> bytes:
    """The Prometheus text format of `scrape`."""
    return generate_latest(registry_of(scrape))
