"""The ASGI endpoint of `POST /` (and `POST /jobs`): parse, call the callback or submit a job,
respond, clean up."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import time
from collections.abc import Awaitable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from .. import defaults, multiplex, tracing
from .._process import per_process
from ..batching import Batcher
from ..exceptions import CallbackTimeout, Overloaded, SettingUp
from ..invoker import Invoker, describe
from ..jobs import Hangup, current_request
from ..jobs.service import JobService
from ..metrics import CALLBACK_SECONDS, RECORDER
from ..supervisor import State, report
from .errors import error_reply
from .hangup import HangupWatch
from .inputs import FORMS, ClientDisconnected, Limits, media_type_of, read_request
from .jobroutes import submit_job
from .models import requested_model
from .overload import retry_wait
from .prefer import jobs_off, wants_async
from .readyboard import ReadyBoard
from .responses import error_response, render
from .streaming import ItemStream, is_stream, wants_events
from .threadpool import CallbackPool, in_daemon_thread

__all__ = ["Endpoint"]

logger = logging.getLogger("izzati")

# what a request that found the callback still setting up is told to wait: setups take seconds to
# minutes, and a client that asks again every second only adds load meanwhile
_SETUP_RETRY_AFTER = 5


class Endpoint:
    """The ASGI endpoint that runs the callback on a request, or submits it as a job.

    Arguments:
        invoker: how to call the callback.
        limits: bounds on the request.
        debug: put the callback's traceback in 500 replies.
        threads: how many plain callbacks may run at once.
        callback_timeout: seconds before the client gets 504 (None: no bound).
        jobs: where jobs go, when the service takes them (`Prefer: respond-async`).
        always_job: every request is a job (`POST /jobs`).
        max_inflight: most calls running or waiting for a thread in this process; beyond it a
            request gets 503 `overloaded` at once, its body unread (None: no bound).
        metrics: time the calls and count the batches (`izzati.metrics`).
        path: the route's path (in readiness lines and error logs).
    """

    def __init__(
        self,
        invoker: Invoker,
        limits: Limits,
        *,
        debug: bool = False,
        threads: int = defaults.THREADS,
        callback_timeout: float | None = None,
        jobs: JobService | None = None,
        always_job: bool = False,
        max_inflight: int | None = None,
        metrics: bool = True,
        path: str = "/",
    ) -> None:
        self.invoker = invoker
        self.path = path
        self.name = describe(invoker.callback)
        self.limits = limits
        self.debug = debug
        self.threads = threads
        self.callback_timeout = callback_timeout
        self.jobs = jobs
        self.always_job = always_job
        self.max_inflight = max_inflight
        self.recorder = RECORDER if metrics else None
        self.inflight = 0
        self.mean_seconds = 0.0  # measured service time of a call (moving average)
        self.board = ReadyBoard(1)
        self.inputs = invoker.typed.inputs if invoker.typed is not None else None

    def expect_processes(self, count: int) -> None:
        """Serve from `count` server processes: each reports its setup to the others."""
        self.board = ReadyBoard(count)

    def start_setup(self) -> asyncio.Task[None] | None:
        """Start the callback's setup in this process, off the event loop (once); None when the
        callback has none. The server answers meanwhile: probes say "setting up"."""
        return self._setup if self.invoker.needs_setup else None

    @per_process
    def _setup(self) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(self._run_setup())

    async def _run_setup(self) -> None:
        self.board.setting_up()
        try:
            # a daemon thread: a setup that hangs must not keep the process from exiting on SIGTERM
            await in_daemon_thread(self.invoker.setup, "izzati-setup")
        except Exception:
            # a server without its model cannot serve: exit (code 1) rather than answer 500s; its
            # supervisor stops the service (a new process would load the same broken model)
            logger.critical("setup of %s raised: this server process exits", self.name, exc_info=True)
            report(State.FAILED)
            os._exit(1)
        self.board.ready()

    def setting_up(self) -> list[str]:
        """What is still setting up among the server processes (empty when all are ready)."""
        return self.board.waiting() if self.invoker.needs_setup else []

    @per_process
    def pool(self) -> CallbackPool:
        """The thread pool for plain callbacks, made anew in each process that serves."""
        return CallbackPool(self.threads)

    @per_process
    def batcher(self) -> Batcher:
        """Groups this process's calls into batches (for a batch callback), made anew per process."""
        assert self.invoker.batch is not None
        run_batch = functools.partial(self.invoker.call, pool=None if self.invoker.is_async else self.pool)
        on_batch = self.recorder.batch if self.recorder is not None else None
        return Batcher(self.invoker.batch, run_batch, self.name, on_batch)

    @per_process
    def watch(self) -> HangupWatch:
        """The calls waiting for a callback in this process, watched for hang-ups."""
        return HangupWatch()

    def shutdown(self) -> None:
        """Let the thread pool go once running callbacks end."""
        pool = Endpoint.pool.here(self)
        if pool is not None:
            pool.shutdown()
            Endpoint.pool.forget(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if multiplex.IN_USE:  # the models the call gets are not torn down before its reply is sent
            with multiplex.holding():
                await self._handle(scope, receive, send)
        else:
            await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        files: list[Any] = []
        response: ASGIApp
        if tracing.ACTIVE:
            tracing.label_route(self.path)
        try:
            try:
                as_job = self.jobs is not None and (self.always_job or wants_async(scope))
                if not as_job and self.max_inflight is not None and self.inflight >= self.max_inflight:
                    response = self._overloaded()
                else:
                    text, files = await read_request(scope, receive, self.limits)
                    given: Any = text
                    if self.inputs is not None:  # a typed callback: 422 before any call, batch or job
                        given = self.inputs.parse(text, files, form=media_type_of(scope)[0] in FORMS)
                    if as_job:
                        assert self.jobs is not None
                        response = await submit_job(self.jobs, scope, receive, self.watch, text, files, self.path)
                    elif self.max_inflight is None:
                        response = await self._respond(scope, receive, given, files)
                    else:
                        response = await self._counted(scope, receive, given, files)
            except ClientDisconnected:
                return
            except Exception as exc:
                # this path skips Starlette's error middleware, so it answers through the policy itself
                response = error_reply(exc, where=f"{scope['method']} {scope['path']}")
            if self.jobs is None and wants_async(scope):
                response = jobs_off(response, self.path)
            await response(scope, receive, send)
        finally:
            for upload in files:
                upload.close()

    async def _respond(self, scope: Scope, receive: Receive, text: Any, files: list[Any]) -> ASGIApp:
        if self.invoker.needs_setup and not self.invoker.ready:
            await self._wait_for_setup()
        hangup = Hangup()
        current_request.set(hangup)  # before the call: a plain callback's thread copies this context
        if multiplex.IN_USE:
            multiplex.current_model.set(requested_model(scope))
        if self.invoker.batch is not None:
            call = self.batcher.submit(text, files)
        else:
            call = self.invoker.call(text, files, pool=None if self.invoker.is_async else self.pool)
        watch = self.watch
        watch.begin(receive, hangup)
        started = time.perf_counter()
        try:
            try:
                if tracing.ACTIVE:
                    with tracing.span(
                        "izzati.callback", attributes={"code.function": self.name, tracing.ROUTE: self.path}
                    ):
                        result = await self._await(call)
                else:
                    result = await self._await(call)
            finally:
                watch.end(hangup)
                if self.recorder is not None:  # counted with its request by the Gate (one lock per request)
                    scope[CALLBACK_SECONDS] = time.perf_counter() - started
            if is_stream(result):
                return self._stream(scope, result, hangup)
            return render(result)
        except asyncio.CancelledError:
            if hangup.is_set():
                raise ClientDisconnected from None
            raise
        except Exception as exc:
            return self._error(exc)

    async def _wait_for_setup(self) -> None:
        """A request before setup finished (or in an app whose lifespan never ran) waits for it,
        as long as it would wait for the callback: past the callback timeout, 503 `setting_up`."""
        task = self.start_setup()
        if task is None:
            return
        try:
            async with asyncio.timeout(self.callback_timeout):
                await asyncio.shield(task)
        except TimeoutError:
            raise SettingUp(
                f"the callback is still setting up after {self.callback_timeout:g} s "
                "(IZZATI_CALLBACK_TIMEOUT): try again later",
                retry_after=_SETUP_RETRY_AFTER,
            ) from None

    async def _await(self, call: Awaitable[Any]) -> Any:
        if self.callback_timeout is None:
            return await call
        try:
            async with asyncio.timeout(self.callback_timeout):
                return await call
        except TimeoutError:
            # a thread cannot be stopped: a plain callback runs on, but its result is dropped
            logger.error("callback %s did not return within %g s", self.name, self.callback_timeout)
            raise CallbackTimeout(f"the callback did not return within {self.callback_timeout:g} s") from None

    async def _counted(self, scope: Scope, receive: Receive, text: Any, files: list[Any]) -> ASGIApp:
        self.inflight += 1
        started = time.perf_counter()
        try:
            return await self._respond(scope, receive, text, files)
        finally:
            self.inflight -= 1
            # a moving average over about the last 20 calls: follows a model that speeds up or slows down
            took = time.perf_counter() - started
            self.mean_seconds = (
                took if self.mean_seconds == 0.0 else self.mean_seconds + (took - self.mean_seconds) / 20
            )

    def _overloaded(self) -> ASGIApp:
        # a plain callback runs on `threads` threads, an async one on the event loop
        limit = self.max_inflight or 1
        concurrency = limit if self.invoker.is_async else min(self.threads, limit)
        wait = retry_wait(self.mean_seconds, self.inflight, limit, concurrency)
        retry_after = max(1, math.ceil(wait))
        error = Overloaded(
            f"{self.inflight} calls are running or waiting (IZZATI_MAX_INFLIGHT={self.max_inflight}): "
            f"try again in {retry_after} s",
            retry_after=retry_after,
        )
        # the body was not read: close, or it would be read as the next request
        return error_response(error, headers={"Retry-After": str(retry_after), "Connection": "close"})

    def _error(self, exc: Exception) -> ASGIApp:
        return error_reply(exc, where=f"POST {self.path}", callback=self.invoker.callback, debug=self.debug)

    def _stream(self, scope: Scope, items: Any, hangup: Hangup) -> ASGIApp:
        # the generator's body runs from here on, lazily, in this task or in pool threads that
        # copy its context: `current_request` is the request's, and so cancelled() is
        return ItemStream(items, self.pool, hangup, events=wants_events(scope), on_error=self._error)
