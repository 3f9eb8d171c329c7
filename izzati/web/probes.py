"""The probes: `GET /health` (the process answers), `GET /ready` (it can do its work), and
`GET /metrics` (what it does, for Prometheus)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from starlette.responses import Response

from ..metrics import FLUSH_SECONDS
from ..metrics.collect import CONTENT_TYPE, Scrape, exposition
from ..metrics.instruments import made_in
from ..queues import Monitored, Queue
from .responses import json_response

__all__ = ["add_probes", "add_metrics_route", "readiness"]


def readiness(queue: Queue | None, others: Sequence[Queue] = (), *, needs_workers: bool = True) -> dict[str, Any]:
    """Whether the service can do its work: the queue answers and, when networked, a worker lives
    (unless not `needs_workers`: workers that scale from zero, e.g. with KEDA).

    For networked queues (`queue` and `others`, e.g. the jobs queue) it also counts the entries
    parked as dead letters: they want a look, but do not make the service unready.
    """
    if not isinstance(queue, Monitored):
        return {"status": "ready", "queue": "local" if queue is not None else "none"}
    try:
        if not queue.ping():
            return {"status": "unavailable", "queue": "unreachable", "workers": 0}
        workers = int(queue.workers_alive())
        parked = {q.dead_letters.name: q.dead_letters.count() for q in (queue, *others) if isinstance(q, Monitored)}
    except Exception:  # a probe reports, it does not raise
        return {"status": "unavailable", "queue": "unreachable", "workers": 0}
    status = "ready" if workers > 0 or not needs_workers else "unavailable"
    return {"status": status, "queue": "ok", "workers": workers, "dead_letters": parked}


def add_probes(
    app: FastAPI,
    queue: Queue | None,
    problems: Callable[[], list[str]],
    others: Sequence[Queue] = (),
    *,
    setting_up: Callable[[], list[str]] = list,
    needs_workers: bool = True,
) -> None:
    """Register `/health` and `/ready`; `problems()` names what else makes the service unready,
    `setting_up()` the local processes still running the callback's setup (503 "setting up"),
    `others` are further queues whose dead letters `/ready` counts; `needs_workers`: see `readiness`."""

    @app.get("/health", summary="Liveness probe")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness probe: the queue is reachable (and, networked, has a live worker)")
    async def ready() -> Response:
        report = await asyncio.to_thread(readiness, queue, others, needs_workers=needs_workers)
        found = problems()
        waiting = setting_up()
        if found:
            report = {**report, "status": "unavailable", "problems": found}
        elif waiting:
            report = {**report, "status": "setting up", "setting_up": waiting}
        return json_response(report, 200 if report["status"] == "ready" else 503)


def add_metrics_route(app: FastAPI, scrape: Scrape) -> None:
    """Register `GET /metrics`: the Prometheus text format of `scrape`."""

    @app.get("/metrics", summary="Metrics in the Prometheus text format (every server process, summed)")
    async def metrics() -> Response:
        if made_in() is not None:
            # the other processes write what they gathered within FLUSH_SECONDS: wait for it, so
            # a scrape counts every request answered before it
            await asyncio.sleep(2 * FLUSH_SECONDS)
        body = await asyncio.to_thread(exposition, scrape)  # the broker and the store block
        return Response(body, media_type=CONTENT_TYPE)
