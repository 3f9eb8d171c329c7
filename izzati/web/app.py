"""`IzzatiApp`: the FastAPI app of a `Backend`, with its one request pipeline built in the constructor.

A request meets, in order: CORS (when origins are allowed), the middleware (request id, header
limit, API key, access log), then either the lean endpoint of `POST /` or FastAPI's router for
everything else (probes, jobs, the try-it page, the OpenAPI docs). User middleware added with
`app.add_middleware` turns the lean path off, so it sees `POST /` too.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import tracing
from ..defaults import GRACEFUL_TIMEOUT
from ..jobs.service import JobService
from ..jobs.thread import JobThread
from ..metrics.collect import Scrape
from ..queues import Queue
from . import accesslog
from .docpages import add_doc_pages
from .doors import Door
from .endpoint import Endpoint
from .errors import exception_handler
from .jobroutes import add_job_routes
from .middleware import Gate
from .openapi import service_schema
from .probes import add_metrics_route, add_probes
from .trypage import add_try_page

__all__ = ["IzzatiApp"]

# FastAPI >= 0.16x makes its own request spans and metrics when a tracer provider is set; izzati's
# (izzati.tracing, izzati.metrics) cover every route, the lean `POST /` too: one span per request
_NO_NATIVE_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


async def _start_jobs(setup: asyncio.Task[None] | None, job_thread: JobThread) -> None:
    """Take jobs once the callback is set up in this process (the model it already holds)."""
    if setup is not None:
        await asyncio.shield(setup)
    job_thread.start()


class IzzatiApp(FastAPI):
    """The FastAPI app of a `Backend`; `POST /` takes a lean path when no middleware is added.

    Arguments:
        endpoint: the endpoint of `POST /` (it holds the callback and the limits); jobs run its callback.
        routes: every route's path and endpoint, `endpoint` among them (default: `endpoint` at `/`).
        queue: the queue the readiness probe asks about.
        problems: names what else makes the service unready (e.g. a dead worker process).
        setting_up: names the other local processes whose setup has not finished.
        jobs: serve the job routes for these jobs.
        api_key, cors_origins, access_log: see `Backend`.
        title, summary: shown in the OpenAPI docs and on the try-it page.
        try_page: serve the try-it page to browsers at `GET /`.
        metrics: serve `GET /metrics` from this scrape (None: no metrics).
        ready_without_workers: `/ready` does not wait for a live worker (see `Backend`).
        job_grace: seconds a job running here may take to finish when the server stops (jobs
            whose queue reaches only this process tree run in its server processes); a
            `server_config` of this app sets it to uvicorn's `timeout_graceful_shutdown`.
        doors: standard APIs served beside `POST /` (the OpenAI-compatible endpoints, MCP).
        chat_models: the chat models served at `/v1/chat/completions`: the try-it page chats with them.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        routes: Mapping[str, Endpoint] | None = None,
        queue: Queue | None = None,
        problems: Callable[[], list[str]] = list,
        setting_up: Callable[[], list[str]] = list,
        jobs: JobService | None = None,
        api_key: str | None = None,
        cors_origins: Sequence[str] = (),
        access_log: bool = True,
        title: str = "izzati",
        summary: str | None = None,
        try_page: bool = True,
        metrics: Scrape | None = None,
        ready_without_workers: bool = False,
        job_grace: float = GRACEFUL_TIMEOUT,
        doors: Sequence[Door] = (),
        chat_models: Sequence[str] = (),
    ) -> None:
        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            tracing.refresh()  # a tracer provider the application set up by now turns tracing on
            for other in self.post_routes.values():  # in the background: the server answers probes meanwhile
                if other is not endpoint:
                    other.start_setup()
            setup = endpoint.start_setup()
            invokers = {path: each.invoker for path, each in self.post_routes.items()}
            job_thread = JobThread(jobs, endpoint.invoker, invokers) if jobs is not None and jobs.runs_here else None
            starting = asyncio.create_task(_start_jobs(setup, job_thread)) if job_thread is not None else None
            async with AsyncExitStack() as stack:
                for door in doors:
                    await stack.enter_async_context(door.running())
                yield
            if starting is not None:
                starting.cancel()
            if job_thread is not None:
                await asyncio.to_thread(job_thread.stop, self.job_grace)
            for each in self.post_routes.values():
                each.shutdown()
                await asyncio.to_thread(each.invoker.teardown)
            accesslog.flush()  # the buffered lines, before uvicorn ends the process (its signal, re-raised)

        # FastAPI's own /docs and /redoc load their assets from a CDN: izzati serves them itself
        super().__init__(
            title=title, summary=summary, lifespan=lifespan, docs_url=None, redoc_url=None, **_NO_NATIVE_TELEMETRY
        )
        self.docs_url, self.redoc_url = "/docs", "/redoc"
        self.endpoint = endpoint
        self.job_grace = job_grace
        self.post_routes = dict(routes) if routes else {"/": endpoint}
        for path, each in self.post_routes.items():
            self.router.routes.append(Route(path, each, methods=["POST"], include_in_schema=False))
        if jobs is not None:
            submit = Endpoint(endpoint.invoker, endpoint.limits, jobs=jobs, always_job=True, path=self._jobs_route())
            self.router.routes.append(Route("/jobs", submit, methods=["POST"], include_in_schema=False))
            add_job_routes(self, jobs)
        add_probes(
            self,
            queue,
            problems,
            [jobs.queue] if jobs is not None else [],
            setting_up=lambda: [*self._routes_setting_up(), *setting_up(), *(w for d in doors for w in d.setting_up())],
            needs_workers=not ready_without_workers,
        )
        for caught in (StarletteHTTPException, RequestValidationError, Exception):
            self.add_exception_handler(caught, exception_handler)
        add_doc_pages(self, self.docs_url, self.redoc_url)
        for door in doors:
            self.router.routes.extend(door.routes())
        if try_page:
            add_try_page(self, chat_models, list(self.post_routes))
        if metrics is not None:
            add_metrics_route(self, metrics)
        entry: ASGIApp = Gate(
            self._dispatch,
            api_key=api_key,
            max_header_bytes=endpoint.limits.max_header_bytes,
            access_log=access_log,
            metrics=metrics is not None,
            refusals={door.prefix: door.unauthorized for door in doors},
        )
        if cors_origins:
            entry = CORSMiddleware(
                entry,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                allow_headers=["*"],
                expose_headers=["Content-Disposition", "X-Request-ID", "Location"],
            )
        self._entry = entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._entry(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route a request that passed the middleware."""
        # The hot routes skip routing and the middleware stack; user middleware disables this.
        if scope["method"] == "POST" and not self.user_middleware and not scope.get("root_path"):
            endpoint = self.post_routes.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _routes_setting_up(self) -> list[str]:
        """What is still setting up, by route when there are several (/ready names them)."""
        if len(self.post_routes) == 1:
            return self.endpoint.setting_up()
        return [f"route {path}: {line}" for path, each in self.post_routes.items() for line in each.setting_up()]

    def _jobs_route(self) -> str:
        return next(path for path, each in self.post_routes.items() if each is self.endpoint)

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI schema: the FastAPI routes plus `POST /` (served outside FastAPI's routing)."""
        if self.openapi_schema is None:
            typed = {path: each.invoker.typed for path, each in self.post_routes.items()}
            self.openapi_schema = service_schema(self, typed, jobs_path=self._jobs_route())
        return self.openapi_schema
