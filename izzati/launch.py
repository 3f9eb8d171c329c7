"""Settings → the processes of a service. `run_web` and `run_worker` are the whole process tree:

    python -m app / izzati run                        python -m app worker / izzati worker
    supervisor (the first process; serves nothing)    worker process (redis://): the worker target
     ├─ izzati-server-0 … N-1: uvicorn, on their       └─ izzati-jobs thread: the job runner
     │   devices (IZZATI_DEVICES × IZZATI_WORKERS_PER_DEVICE); each sets the callback up once,
     │   and on memory:// runs jobs in its izzati-jobs thread with that same model
     │   policy RESTART: a crashed one starts again, its jobs given back; a failed setup stops all
     └─ izzati-worker (memory://): the worker target    policy RESTART
    (IZZATI_QUEUE_URL=redis://...): server processes only; workers run apart, any number of them.

Both take the callback and the worker target from the settings, fail fast with one line naming
the setting (`ConfigError`), and stop gracefully on SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from . import devices, tracing
from ._process import critical_thread
from .assembly import (
    batch_options,
    build_backend,
    build_jobs,
    check_port,
    is_memory,
    load_callback,
    load_routes,
    load_worker,
    open_settings_queue,
    serve_worker_metrics,
    worker_routes,
)
from .exceptions import ConfigError
from .invoker import Invoker
from .jobs.runner import JobRunner
from .queues import mask_url
from .settings import Settings
from .supervisor import Child, Policy
from .worker import run_worker as run_worker_target

__all__ = ["run_web", "run_worker", "server_devices"]

logger = logging.getLogger("izzati.service")


def server_devices(settings: Settings) -> list[str]:
    """The devices the settings name (IZZATI_DEVICES; `auto` asks nvidia-smi), as a ConfigError."""
    try:
        return devices.parse(settings.devices)
    except ValueError as exc:
        raise ConfigError(f"IZZATI_DEVICES={settings.devices!r}: {exc}") from None


def run_web(settings: Settings) -> None:
    """Serve the callback from supervised server processes; with memory:// also run the worker
    target next to them (and the jobs inside them)."""
    check_port(settings.host, settings.port)
    found = server_devices(settings)
    target = load_worker(settings) if is_memory(settings) else None
    queue = open_settings_queue(settings)
    jobs = build_jobs(settings)
    backend = build_backend(settings, queue, jobs)
    servers, sock = backend.server_children(
        settings.host,
        settings.port,
        devices=found,
        per_device=settings.workers_per_device or settings.workers,
        cpu_threads=settings.cpu_threads,
        log_level=settings.log_level,
        timeout_graceful_shutdown=settings.graceful_timeout,
        limit_concurrency=settings.max_connections,
    )
    tree = list(servers)
    if target is not None:
        # the same graceful stop as `python -m app worker`: on SIGTERM the current item finishes
        worker_args = (target, queue, settings.worker_args, settings.worker_kwargs)
        options = {"grace": settings.graceful_timeout, "stop_signals": (signal.SIGTERM,)}
        tree.append(Child("izzati-worker", run_worker_target, worker_args, options, policy=Policy.RESTART))
    backend.supervise(tree, sock, grace=settings.graceful_timeout)


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
        # the worker runs jobs with the very same callbacks the web side serves, each job its route's
        try:
            batching = batch_options(settings)
            callbacks = load_routes(settings) or {"/": load_callback(settings)}
            served = worker_routes(settings, list(callbacks))
            routes = {
                path: Invoker(callback, settings.callback_args, settings.callback_kwargs, queue=queue, **batching)
                for path, callback in callbacks.items()
                if path in served
            }
        except TypeError as exc:
            raise ConfigError(f"IZZATI_CALLBACK={settings.callback!r}: wrong signature: {exc}") from None
        elsewhere = [path for path in callbacks if path not in served]
        runner = jobs.runner(routes.get("/") or next(iter(routes.values())), routes, elsewhere)
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
