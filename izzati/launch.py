"""Settings → the processes of a service. `run_web` and `run_worker` are the whole process tree:

    python -m app / izzati run                    python -m app worker / izzati worker
    (IZZATI_QUEUE_URL=memory://)                  (IZZATI_QUEUE_URL=redis://...)
    web process: uvicorn, IZZATI_WORKERS of them  worker process: the worker target (main thread)
     ├─ izzati-worker: the worker target           └─ izzati-jobs thread: the job runner
     └─ izzati-jobs: the job runner
    (IZZATI_QUEUE_URL=redis://...): web process(es) only; workers run apart, any number of them.

Both take the callback and the worker target from the settings, fail fast with one line naming
the setting (`ConfigError`), and stop gracefully on SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING

from . import tracing
from ._process import critical_thread
from .exceptions import ConfigError
from .invoker import Invoker
from .jobs.runner import JobRunner
from .queues import mask_url
from .settings import Settings
from .worker import run_worker as run_worker_target

if TYPE_CHECKING:
    pass
from .assembly import (
    batch_options,
    build_backend,
    build_jobs,
    check_port,
    is_memory,
    load_callback,
    load_worker,
    open_settings_queue,
    serve_worker_metrics,
)

__all__ = ["run_web", "run_worker"]

logger = logging.getLogger("izzati.service")


def run_web(settings: Settings) -> None:
    """Serve the callback; with memory:// also start the worker and the job runner next to it."""
    check_port(settings.host, settings.port)
    target = load_worker(settings) if is_memory(settings) else None
    queue = open_settings_queue(settings)
    jobs = build_jobs(settings)
    backend = build_backend(settings, queue, jobs)
    if target is not None:
        # the same graceful stop as `python -m app worker`: on SIGTERM the current item finishes;
        # Ctrl+C reaches this child too, but the web process alone stops it (one SIGTERM at exit)
        backend.start_child(
            run_worker_target,
            "izzati-worker",
            target,
            queue,
            settings.worker_args,
            settings.worker_kwargs,
            grace=settings.graceful_timeout,
            stop_signals=(signal.SIGTERM,),
        )
        if jobs is not None:
            backend.start_job_runner()  # memory://: this machine's own job runner
    backend.run(
        settings.host,
        settings.port,
        log_level=settings.log_level,
        workers=settings.workers,
        timeout_graceful_shutdown=settings.graceful_timeout,
        limit_concurrency=settings.max_connections,
    )


def run_worker(settings: Settings) -> None:
    """Run the worker target in this process until it returns or the process is stopped; with
    jobs on, a thread of the same process runs jobs with the web callback."""
    if is_memory(settings):
        raise ConfigError(
            f"IZZATI_QUEUE_URL={settings.queue_url!r}: a separate worker needs a networked queue; "
            "set IZZATI_QUEUE_URL=redis://host:6379/0 (memory:// runs the worker inside the web process)"
        )
    target = load_worker(settings)
    tracing.configure(settings.traces)  # after the worker's module set up its own, if it does
    queue = open_settings_queue(settings)
    jobs = build_jobs(settings)
    runner: JobRunner | None = None
    thread: threading.Thread | None = None
    died = ""

    def stop_for_restart(name: str) -> None:
        # stop as `docker stop` would (the current item finishes), then exit non-zero below
        nonlocal died
        died = name
        os.kill(os.getpid(), signal.SIGTERM)

    if jobs is not None:
        # the worker runs jobs with the very same callback the web side serves
        try:
            callback, batching = load_callback(settings), batch_options(settings)
            invoker = Invoker(callback, settings.callback_args, settings.callback_kwargs, queue=queue, **batching)
        except TypeError as exc:
            raise ConfigError(f"IZZATI_CALLBACK={settings.callback!r}: wrong signature: {exc}") from None
        runner = jobs.runner(invoker)
        thread = critical_thread(runner.run, "izzati-jobs", stop_for_restart)
    if settings.metrics_port is not None:
        serve_worker_metrics(settings, queue, jobs)
    logger.info("worker %s started on %s", settings.worker, mask_url(settings.queue_url))
    stopped_at = 0.0

    def stop_jobs() -> None:
        nonlocal stopped_at
        stopped_at = time.monotonic()
        if runner is not None:
            runner.stop()

    try:
        run_worker_target(
            target,
            queue,
            settings.worker_args,
            settings.worker_kwargs,
            grace=settings.graceful_timeout,
            on_stop=stop_jobs,
        )
    finally:
        if runner is not None and thread is not None and jobs is not None:
            runner.stop()
            # one grace period in all, counted from the signal: a job still running then is redelivered
            spent = time.monotonic() - stopped_at if stopped_at else 0.0
            thread.join(max(0.0, settings.graceful_timeout - spent))
            jobs.queue.close()
    if died:
        raise SystemExit(f"izzati: the worker's {died} thread died; exiting so that its supervisor restarts it")
