"""`Backend`: one callback served over HTTP, as an ASGI app and as a uvicorn server."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import defaults
from ..examples import echo
from ..invoker import Invoker, describe
from ..jobs.service import JobService
from ..metrics import label_routes
from ..metrics.collect import Scrape
from ..queues import Queue, resolve_queue
from ..supervisor import Supervisor
from .app import IzzatiApp
from .doors import open_doors
from .endpoint import Endpoint
from .inputs import Limits
from .routes import route_callbacks
from .serving import SERVER, WORKER, Serving

__all__ = ["Backend"]


class Backend(Serving):
    """Serve one callback over HTTP: `Backend(callback).run()`; or several, each on its path:
    `Backend({"/": echo, "/classify": Classifier})`.

    Arguments:
        callback: called as `callback(text, data, *args, **kwargs)` for each `POST /`; with
            `background=True` as `callback(q, text, data, *args, **kwargs)`. A plain function runs
            in a worker thread, an `async def` is awaited. A mapping of paths to callbacks serves
            each on its path, each with its own setup, batching and streaming; `args`, `kwargs` and
            the batch settings apply to each; jobs run the callback at `/` (the first, without one).
        args, kwargs: extra arguments for the callback, after `text` and `data`.
        background: `run()` starts the server in a child process and returns `(process, queue)`.
        queue: a queue (or queue URL) for the callback: with `background=True` it replaces the
            default in-process queue; otherwise it is passed to a callback that names a `q`
            parameter (first, or as `q=`).
        max_body_bytes: the largest request body accepted (413 beyond it).
        limits: all request limits at once (`izzati.Limits`); `max_body_bytes` overrides its field.
        debug: put the callback's traceback in 500 responses.
        threads: how many plain callbacks may run at once.
        callback_timeout: seconds a callback may take before the client gets 504 (None: no bound).
        max_inflight: most calls running or waiting for a thread per server process; beyond it
            503 `overloaded` with a `Retry-After` from the measured service time (None: no bound).
        batch_size: the callback takes batches of up to this many concurrent requests, a list of
            `(text, data)`, and returns one result per item (see `izzati.batched`).
        batch_wait_ms: how long the first request of a batch may wait for more (default 5 ms).
        api_key: when set, every route but `/health`, `/ready`, `/izzati.js` and the try-it page
            needs `Authorization: Bearer <key>`.
        jobs: accept jobs (`Prefer: respond-async` or `POST /jobs`) in a local job folder, run by
            the server processes themselves, with the callback they set up (no copy of their own).
        job_service: accept jobs into this `JobService` instead (its runners run elsewhere, e.g.
            `python -m app worker` on a Redis queue).
        cors_origins: origins whose browser pages may call this service (`["*"]` for any).
        access_log: log one line per request (method, path, status, duration, request id).
        title: the service name shown in the OpenAPI docs.
        try_page: serve the try-it page to browsers at `GET /` (and `/izzati.js`).
        metrics: serve `GET /metrics` (Prometheus text format; needs the API key when one is set)
            and count requests, durations and batches for it.
        traces: `"otlp"` or `"console"`: set up OpenTelemetry's SDK for traces (`izzati[otel]`);
            `""`: trace only when the application set a tracer provider itself.
        ready_without_workers: `GET /ready` answers 200 when the queue answers, even with no
            live worker (workers that scale from zero, e.g. KEDA on Kubernetes).
        chat: model name → chat callback, served at `POST /v1/chat/completions` and
            `POST /v1/responses` (OpenAI-compatible; the contract is in `izzati.chat`).
        embeddings: model name → embedding callback, served at `POST /v1/embeddings`.
        mcp: serve the callback as an MCP tool at `/mcp` (streamable HTTP; `izzati[mcp]`); with
            jobs, a call runs as a job: `progress()` becomes progress notifications, the client's
            cancel makes `cancelled()` true, and a call longer than `mcp_wait` seconds goes on
            as a job the client follows with the `izzati_job` tool.
        mcp_wait: see `mcp`.
    """

    def __init__(
        self,
        callback: Callable[..., Any] | Mapping[str, Callable[..., Any]] = echo,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        background: bool = False,
        *,
        queue: Queue | str | None = None,
        max_body_bytes: int | None = None,
        limits: Limits | None = None,
        debug: bool = False,
        threads: int = defaults.THREADS,
        callback_timeout: float | None = None,
        max_inflight: int | None = None,
        batch_size: int | None = None,
        batch_wait_ms: float | None = None,
        api_key: str | None = None,
        cors_origins: Sequence[str] = (),
        access_log: bool = True,
        jobs: bool = False,
        job_service: JobService | None = None,
        title: str = "izzati",
        try_page: bool = True,
        metrics: bool = True,
        traces: str = "",
        ready_without_workers: bool = False,
        chat: Mapping[str, Callable[..., Any]] | None = None,
        embeddings: Mapping[str, Callable[..., Any]] | None = None,
        mcp: bool = False,
        mcp_wait: float = defaults.MCP_WAIT,
    ) -> None:
        if isinstance(jobs, JobService):  # the 2.0 spelling, Backend(jobs=JobService(...)), still works
            jobs, job_service = False, jobs
        self.callback = callback
        self.background = background
        self.q: Queue | None = resolve_queue(queue) if background or queue is not None else None
        callbacks = route_callbacks(callback)
        self.invokers = {
            path: Invoker(
                target,
                args,
                kwargs,
                queue=self.q,
                queue_first=background,
                batch_size=batch_size,
                batch_wait_ms=batch_wait_ms,
            )
            for path, target in callbacks.items()
        }
        self.batches_only = (
            not chat
            and not embeddings
            and all(
                invoker.batch is not None and invoker.batch.max_concurrent is None for invoker in self.invokers.values()
            )
        )
        """Every callback takes batches and leaves how many run at once to izzati (and none is a chat
        or embeddings model): see `Serving.two_batches`."""
        self.invoker = self.invokers.get("/") or next(iter(self.invokers.values()))
        """The invoker of `/` (of the first route, when none is at `/`): the one jobs run with."""
        limits = limits or Limits()
        if max_body_bytes is not None:
            limits = dataclasses.replace(limits, max_body_bytes=max_body_bytes)
        self.limits = limits
        self.local_jobs = bool(jobs) and job_service is None
        self.jobs: JobService | None = JobService.local() if self.local_jobs else job_service
        self.supervisor = Supervisor(on_restart=self._restarting, grace=defaults.GRACEFUL_TIMEOUT)
        """The process tree of this service (server processes, a memory:// worker), once declared."""
        self.routes = {
            path: Endpoint(
                invoker,
                limits,
                debug=debug,
                threads=threads,
                callback_timeout=callback_timeout,
                jobs=self.jobs,
                max_inflight=max_inflight,
                metrics=metrics,
                path=path,
            )
            for path, invoker in self.invokers.items()
        }
        """Each route's path and endpoint (the endpoint holds its invoker)."""
        self.endpoint = next(endpoint for endpoint in self.routes.values() if endpoint.invoker is self.invoker)
        self.metrics = metrics
        self.traces = traces
        label_routes(self.routes)  # each route's requests counted under its path
        scrape = None
        if metrics:
            alive = self.supervisor.alive
            queues: list[tuple[str, Any, Callable[[], int] | None]] = []
            if self.q is not None:
                queues.append((getattr(self.q, "name", "memory"), self.q, lambda: alive(WORKER)))
            if self.jobs is not None:
                queues.append((getattr(self.jobs.queue, "name", "memory:jobs"), self.jobs.queue, lambda: alive(SERVER)))
            scrape = Scrape(queues, self.jobs.store if self.jobs is not None else None)
        self.app = IzzatiApp(
            self.endpoint,
            routes=self.routes,
            queue=self.q,
            problems=self.supervisor.problems,
            setting_up=self.supervisor.setting_up,
            jobs=self.jobs,
            api_key=api_key,
            cors_origins=cors_origins,
            access_log=access_log,
            title=title,
            summary=f"izzati backend for {', '.join(describe(i.callback) for i in self.invokers.values())}",
            try_page=try_page,
            metrics=scrape,
            ready_without_workers=ready_without_workers,
            doors=open_doors(
                self.endpoint,
                self.routes,
                chat=chat or {},
                embeddings=embeddings or {},
                mcp=mcp,
                mcp_wait=mcp_wait,
                jobs=self.jobs,
                max_inflight=max_inflight,
                threads=threads,
                metrics=metrics,
                title=title,
            ),
            chat_models=list(chat or {}),
        )
