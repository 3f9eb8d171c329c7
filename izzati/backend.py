"""`Backend`: one callback served over HTTP, as an ASGI app and as a uvicorn server."""

from __future__ import annotations

import asyncio
import copy
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ._calling import Invoker, describe
from ._pool import CallbackPool
from ._protocol import header_timeout_protocol
from ._utils import exit_on_signals, line_buffered_output, mp_context, run_quietly
from .examples import echo
from .exceptions import (
    CallbackError,
    CallbackTimeout,
    HTTPError,
    PayloadTooLarge,
    QueueUnavailable,
    RequestTimeout,
    ServiceUnavailable,
)
from .gate import Gate
from .inputs import ClientDisconnected, Limits, read_request
from .jobroutes import JobService, add_job_routes, wants_async
from .jobs import JobRunner
from .openapi import post_root_openapi
from .queues import MemoryQueue, Queue, open_queue
from .responses import error_code, error_response, format_traceback, json_response, render
from .trypage import add_try_page

__all__ = ["Backend", "IzzatiApp"]

logger = logging.getLogger("izzati")

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 5020


class Endpoint:
    """The ASGI endpoint of `POST /`: parse, call the callback, respond, clean up."""

    def __init__(
        self,
        invoker: Invoker,
        limits: Limits,
        *,
        debug: bool = False,
        threads: int = 40,
        callback_timeout: float | None = None,
        jobs: JobService | None = None,
        force_job: bool = False,
    ) -> None:
        self.jobs = jobs
        self.force_job = force_job
        self.invoker = invoker
        self.limits = limits
        self.debug = debug
        self.threads = threads
        self.callback_timeout = callback_timeout
        self._pool: CallbackPool | None = None
        self._pool_pid = 0

    @property
    def pool(self) -> CallbackPool:
        """The thread pool for plain callbacks, made anew in each process that serves."""
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = CallbackPool(self.threads)
            self._pool_pid = os.getpid()
        return self._pool

    def shutdown(self) -> None:
        """Let the thread pool go once running callbacks end."""
        if self._pool is not None and self._pool_pid == os.getpid():
            self._pool.shutdown()
            self._pool = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        files: list[Any] = []
        response: ASGIApp
        try:
            try:
                text, files = await read_request(scope, receive, self.limits)
                if self.jobs is not None and (self.force_job or wants_async(scope)):
                    response = await self.jobs.submit(scope, text, files)
                else:
                    response = await self._respond(text, files)
            except ClientDisconnected:
                return
            except (RequestTimeout, PayloadTooLarge) as exc:
                # the rest of the body may still be on its way: close, or it would be read as a request
                response = error_response(exc, headers={"Connection": "close"})
            except HTTPError as exc:
                response = error_response(exc)
            except QueueUnavailable as exc:
                logger.error("the queue is unavailable: %s", exc)
                response = error_response(ServiceUnavailable(f"the queue is unavailable: {exc}"))
            except Exception:
                # this path skips Starlette's error middleware, so it answers in JSON itself
                logger.exception("%s %s failed", scope["method"], scope["path"])
                response = error_response(HTTPError("the server failed to handle the request"))
            await response(scope, receive, send)
        finally:
            for upload in files:
                upload.close()

    async def _respond(self, text: dict[str, Any], files: list[Any]) -> ASGIApp:
        call = self.invoker.call(text, files, None if self.invoker.is_async else self.pool)
        try:
            if self.callback_timeout is None:
                result = await call
            else:
                async with asyncio.timeout(self.callback_timeout):
                    result = await call
            return render(result)
        except HTTPError as exc:
            if isinstance(exc, CallbackError):  # e.g. a return value that is not JSON
                logger.error("callback %s: %s", describe(self.invoker.callback), exc.detail)
            return error_response(exc)
        except QueueUnavailable as exc:
            logger.error("callback %s: the queue is unavailable: %s", describe(self.invoker.callback), exc)
            return error_response(ServiceUnavailable(f"the queue is unavailable: {exc}"))
        except TimeoutError:
            # a thread cannot be stopped: a plain callback runs on, but its result is dropped
            name = describe(self.invoker.callback)
            logger.error("callback %s did not return within %g s", name, self.callback_timeout)
            return error_response(CallbackTimeout(f"the callback did not return within {self.callback_timeout:g} s"))
        except Exception as exc:
            logger.exception("callback %s raised %s", describe(self.invoker.callback), type(exc).__name__)
            if self.debug:
                error = CallbackError(f"the callback raised {type(exc).__name__}: {exc}")
                return error_response(error, traceback=format_traceback(exc))
            return error_response(CallbackError(f"the callback raised {type(exc).__name__}"))


class IzzatiApp(FastAPI):
    """The FastAPI app of a `Backend`; `POST /` takes a lean path when no middleware is added."""

    endpoint: Endpoint
    entry: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.entry(scope, receive, send)  # CORS, then the gate, then dispatch
        else:
            await super().__call__(scope, receive, send)

    async def dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route a request that passed the gate."""
        # The hot route skips routing and the middleware stack; user middleware disables this.
        if (
            scope["type"] == "http"
            and scope["path"] == "/"
            and scope["method"] == "POST"
            and not self.user_middleware
            and not scope.get("root_path")
        ):
            await self.endpoint(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    error = HTTPError(str(exc.detail), code=error_code(exc.status_code), status_code=exc.status_code)
    return error_response(error, headers=dict(exc.headers or {}))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return json_response(
        {"error": "validation_error", "detail": "the request is not valid", "errors": exc.errors()},
        422,
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(HTTPError("the server failed to handle the request"))


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's logging setup plus izzati's loggers (access lines, callback errors) on stderr."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["izzati"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def process_check(process: BaseProcess) -> Callable[[], str | None]:
    """A readiness check that fails once `process` is gone (usable from any process: by pid)."""
    pid, name = process.pid, process.name
    assert pid is not None, "the process must be started"

    def check() -> str | None:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            return f"{name} (pid {pid}) is not running"
        except OSError:  # no /proc here: signal 0 says whether the pid exists
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return f"{name} (pid {pid}) is not running"
            return None
        return f"{name} (pid {pid}) is not running" if state in ("Z", "X") else None

    return check


def readiness(queue: Any) -> dict[str, Any]:
    """Whether the service can do its work: the queue answers and, when networked, a worker lives."""
    if queue is None or not hasattr(queue, "ping"):
        return {"status": "ready", "queue": "local" if queue is not None else "none"}
    try:
        if not queue.ping():
            return {"status": "unavailable", "queue": "unreachable", "workers": 0}
        workers = int(queue.workers_alive()) if hasattr(queue, "workers_alive") else 1
    except Exception:  # a probe reports, it does not raise
        return {"status": "unavailable", "queue": "unreachable", "workers": 0}
    return {"status": "ready" if workers > 0 else "unavailable", "queue": "ok", "workers": workers}


def _resolve_queue(queue: Queue | str | None) -> Queue:
    if queue is None:
        return MemoryQueue()
    if isinstance(queue, str):
        return open_queue(queue)
    return queue


class Backend:
    """Serve one callback over HTTP: `Backend(callback).run()`.

    Arguments:
        callback: called as `callback(text, data, *args, **kwargs)` for each `POST /`; with
            `background=True` as `callback(q, text, data, *args, **kwargs)`. A plain function runs
            in a worker thread, an `async def` is awaited.
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
        api_key: when set, every route but `/health` and `/ready` needs `Authorization: Bearer <key>`.
        jobs: accept jobs (`Prefer: respond-async` or `POST /jobs`): True for a local job folder and
            runner process started by `run()`, or a `JobService` whose workers run elsewhere.
        cors_origins: origins whose browser pages may call this service (`["*"]` for any).
        access_log: log one line per request (method, path, status, duration, request id).
        title: the service name shown in the OpenAPI docs.
        try_page: serve the try-it page to browsers at `GET /` (and `/izzati.js`).
    """

    def __init__(
        self,
        callback: Callable[..., Any] = echo,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        background: bool = False,
        *,
        queue: Queue | str | None = None,
        max_body_bytes: int | None = None,
        limits: Limits | None = None,
        debug: bool = False,
        threads: int = 40,
        callback_timeout: float | None = None,
        api_key: str | None = None,
        cors_origins: Sequence[str] = (),
        access_log: bool = True,
        jobs: bool | JobService = False,
        title: str = "izzati",
        try_page: bool = True,
    ) -> None:
        self.callback = callback
        self.background = background
        self.q: Queue | None = _resolve_queue(queue) if background or queue is not None else None
        invoker = Invoker(callback, args, kwargs, queue=self.q, queue_first=background)
        limits = limits or Limits()
        if max_body_bytes is not None:
            limits = Limits(**{**limits.__dict__, "max_body_bytes": max_body_bytes})
        self.limits = limits
        self.ready_checks: list[Callable[[], str | None]] = []  # each names a problem, or returns None
        self.local_jobs = jobs is True
        self.jobs: JobService | None = JobService.local() if jobs is True else jobs or None
        self.invoker = invoker
        self.endpoint = Endpoint(
            invoker, limits, debug=debug, threads=threads, callback_timeout=callback_timeout, jobs=self.jobs
        )
        self.app = self._make_app(title, try_page)
        entry: ASGIApp = Gate(
            self.app.dispatch, api_key=api_key, max_header_bytes=limits.max_header_bytes, access_log=access_log
        )
        if cors_origins:
            entry = CORSMiddleware(
                entry,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                allow_headers=["*"],
                expose_headers=["Content-Disposition", "X-Request-ID", "Location"],
            )
        self.app.entry = entry

    def _make_app(self, title: str, try_page: bool) -> IzzatiApp:
        endpoint = self.endpoint

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            yield
            endpoint.shutdown()

        app = IzzatiApp(title=title, lifespan=lifespan, summary=f"izzati backend for {describe(self.callback)}")
        app.endpoint = endpoint
        app.router.routes.append(Route("/", endpoint, methods=["POST"], include_in_schema=False))
        if self.jobs is not None:
            submit = Endpoint(endpoint.invoker, endpoint.limits, jobs=self.jobs, force_job=True)
            app.router.routes.append(Route("/jobs", submit, methods=["POST"], include_in_schema=False))
            add_job_routes(app, self.jobs)

        @app.get("/health", summary="Liveness probe")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        queue = self.q
        checks = self.ready_checks

        @app.get("/ready", summary="Readiness probe: the queue is reachable (and, networked, has a live worker)")
        async def ready() -> Response:
            report = await asyncio.to_thread(readiness, queue)
            problems = [problem for check in checks if (problem := check()) is not None]
            if problems:
                report = {**report, "status": "unavailable", "problems": problems}
            return json_response(report, 200 if report["status"] == "ready" else 503)

        app.add_exception_handler(StarletteHTTPException, _http_error)
        app.add_exception_handler(RequestValidationError, _validation_error)
        app.add_exception_handler(Exception, _server_error)
        if try_page:
            add_try_page(app)
        post_root_openapi(app)
        return app

    def run(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        use_reloader: bool | None = None,
        *,
        workers: int = 1,
        log_level: str = "info",
        **uvicorn_options: Any,
    ) -> tuple[BaseProcess, Queue] | None:
        """Serve until stopped; with `background=True`, serve in a child process and return `(p, q)`.

        `workers` > 1 runs that many server processes (one by default, which suits a callback
        that keeps state in memory).

        `use_reloader` is accepted for old scripts and ignored: izzati never reloads or runs the
        script twice. Other keyword arguments go to `uvicorn.Config`.
        """
        del use_reloader
        if self.local_jobs:
            self.start_job_runner()
        if self.background:
            assert self.q is not None
            process = mp_context().Process(
                target=self.serve,
                args=(host, port),
                kwargs={"workers": workers, "log_level": log_level, **uvicorn_options},
                daemon=True,
                name=f"izzati-web-{port}",
            )
            process.start()
            return process, self.q
        self.serve(host, port, workers=workers, log_level=log_level, **uvicorn_options)
        return None

    def start_job_runner(self) -> BaseProcess:
        """Start a process that runs this backend's jobs (for `jobs=True` and memory queues)."""
        assert self.jobs is not None
        runner = JobRunner(
            self.invoker, self.jobs.store, self.jobs.queue, max_attempts=self.jobs.max_attempts, ttl=self.jobs.ttl
        )
        process = mp_context().Process(target=run_quietly, args=(runner.run,), daemon=True, name="izzati-jobs")
        process.start()
        self.ready_checks.append(process_check(process))
        return process

    def serve(
        self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, workers: int = 1, **uvicorn_options: Any
    ) -> None:
        """Run uvicorn until SIGINT/SIGTERM, in-flight requests finishing; `workers` > 1 forks
        that many server processes sharing one listening socket."""
        import uvicorn

        # izzati's gate writes the access log (with the request id), so uvicorn's is off
        options: dict[str, Any] = {
            "log_level": "info",
            "timeout_graceful_shutdown": 30,
            "access_log": False,
        }
        options.update(uvicorn_options)
        options.setdefault("log_config", log_config(str(options["log_level"])))
        if "http" not in options:
            protocol = header_timeout_protocol(self.limits.read_timeout, self.limits.max_header_bytes)
            if protocol is not None:
                options["http"] = protocol
        config = uvicorn.Config(self.app, host=host, port=port, **options)
        line_buffered_output()  # callbacks print; their lines should reach logs as they happen
        if workers <= 1:
            with exit_on_signals():
                uvicorn.Server(config).run()
            return
        from ._supervisor import serve_forked

        serve_forked(config, workers)
