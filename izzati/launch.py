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

import dataclasses
import logging
import os
import re
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from ._process import bound_socket, critical_thread
from .exceptions import ConfigError, QueueUnavailable
from .invoker import Invoker
from .jobs.runner import JobRunner
from .jobs.service import JobService
from .jobs.store import DirectoryJobStore
from .loader import check_signature, extend_path, import_callable
from .queues import MemoryQueue, Queue, mask_url, open_queue
from .settings import Settings
from .worker import run_worker as run_worker_target

if TYPE_CHECKING:
    from .web.backend import Backend
    from .web.inputs import Limits

__all__ = [
    "load_settings",
    "configure_logging",
    "load_callback",
    "load_worker",
    "open_settings_queue",
    "build_jobs",
    "build_backend",
    "run_web",
    "run_worker",
]

logger = logging.getLogger("izzati.service")


def load_settings(**overrides: Any) -> Settings:
    """Read the settings (environment, `.env`, then `overrides`), errors as one ConfigError line."""
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"IZZATI_{'_'.join(str(p) for p in error['loc']).upper()}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(problems) from None
    except SettingsError as exc:
        match = re.search(r'field "(\w+)"', str(exc))
        name = f"IZZATI_{match.group(1).upper()}" if match else "a setting"
        raise ConfigError(
            f"{name}: not valid JSON ({exc.__cause__}); list and object settings take JSON, "
            "e.g. '[1, 2]' or '{\"k\": 1}'"
        ) from None


def configure_logging(settings: Settings) -> None:
    """Log izzati's messages at the configured level."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")


def _memory(settings: Settings) -> bool:
    return settings.queue_url.startswith("memory:")


def load_callback(settings: Settings) -> Callable[..., Any]:
    """Import the web callback named by IZZATI_CALLBACK."""
    extend_path(settings.callback_path)
    return import_callable(settings.callback, "IZZATI_CALLBACK")


def load_worker(settings: Settings) -> Callable[..., Any]:
    """Import the worker target and check it can be called as `target(q, *args, **kwargs)`."""
    extend_path(settings.callback_path)
    target = import_callable(settings.worker, "IZZATI_WORKER")
    check_signature(
        target,
        (None, *settings.worker_args),
        settings.worker_kwargs,
        shape="target(q, *IZZATI_WORKER_ARGS, **IZZATI_WORKER_KWARGS)",
        setting="IZZATI_WORKER",
        spec=settings.worker,
    )
    return target


def _open_named_queue(settings: Settings, name: str) -> Queue:
    if _memory(settings):
        return MemoryQueue()
    try:
        return open_queue(
            settings.queue_url,
            name=name,
            connect_timeout=settings.queue_connect_timeout,
            redelivery_timeout=settings.redelivery_timeout,
            max_deliveries=settings.max_deliveries,
        )
    except (ConfigError, QueueUnavailable) as exc:
        raise ConfigError(f"IZZATI_QUEUE_URL={mask_url(settings.queue_url)!r}: {exc}") from None


def open_settings_queue(settings: Settings) -> Queue:
    """Open the queue the settings name, waiting a bounded time for a broker to come up."""
    return _open_named_queue(settings, settings.queue_name)


def default_job_dir() -> Path:
    """This user's private job folder under the system temp folder (made with mode 0700)."""
    path = Path(tempfile.gettempdir()) / f"izzati-jobs-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    # a shared /tmp: refuse a folder someone else made (or a link) to read or plant job files
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ConfigError(
            f"IZZATI_JOB_DIR: the default job folder {str(path)!r} is not a private folder of this user; "
            "set IZZATI_JOB_DIR to a folder of your own"
        )
    return path


def build_jobs(settings: Settings) -> JobService | None:
    """The job store and jobs queue the settings name (None when jobs are off)."""
    if not settings.jobs:
        return None
    options: dict[str, Any] = {
        "max_attempts": settings.job_max_attempts,
        "ttl": settings.job_ttl,
        "retries": settings.job_retries,
        "max_queued": settings.max_queued_jobs,
    }
    if _memory(settings) and not settings.job_dir:
        # a memory queue lives and dies with this process tree, and so do its jobs
        return JobService.local(**options)
    try:
        root = Path(settings.job_dir) if settings.job_dir else default_job_dir()
        store = DirectoryJobStore(root)
        if not os.access(root, os.W_OK | os.X_OK):
            raise PermissionError(f"no write permission for {str(root)!r}")
    except OSError as exc:
        raise ConfigError(f"IZZATI_JOB_DIR={settings.job_dir!r}: cannot use the job folder: {exc}") from None
    queue = _open_named_queue(settings, f"{settings.queue_name}:jobs")
    return JobService(store, queue, **options)


def limits_of(settings: Settings) -> Limits:
    """The request limits the settings give (every `Limits` field that is also a setting)."""
    from .web.inputs import Limits

    names = [field.name for field in dataclasses.fields(Limits) if field.name in Settings.model_fields]
    return Limits(**{name: getattr(settings, name) for name in names})


def build_backend(settings: Settings, queue: Queue | None, jobs: JobService | None = None) -> Backend:
    """Import the callback and make its `Backend`; a wrong signature is a ConfigError."""
    from .web.backend import Backend

    callback = load_callback(settings)
    try:
        return Backend(
            callback,
            settings.callback_args,
            settings.callback_kwargs,
            queue=queue,
            limits=limits_of(settings),
            debug=settings.debug,
            try_page=settings.try_page,
            callback_timeout=settings.callback_timeout,
            max_inflight=settings.max_inflight,
            api_key=settings.api_key or None,
            cors_origins=[origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()],
            access_log=settings.access_log,
            job_service=jobs,
        )
    except TypeError as exc:
        raise ConfigError(f"IZZATI_CALLBACK={settings.callback!r}: wrong signature: {exc}") from None


def check_port(host: str, port: int) -> None:
    """Fail with one line, before anything starts, when the address cannot be listened on."""
    try:
        bound_socket(host, port).close()
    except OSError as exc:
        raise ConfigError(f"IZZATI_HOST={host!r} IZZATI_PORT={port}: cannot listen there: {exc.strerror}") from None


def run_web(settings: Settings) -> None:
    """Serve the callback; with memory:// also start the worker and the job runner next to it."""
    check_port(settings.host, settings.port)
    target = load_worker(settings) if _memory(settings) else None
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
    if _memory(settings):
        raise ConfigError(
            f"IZZATI_QUEUE_URL={settings.queue_url!r}: a separate worker needs a networked queue; "
            "set IZZATI_QUEUE_URL=redis://host:6379/0 (memory:// runs the worker inside the web process)"
        )
    target = load_worker(settings)
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
            invoker = Invoker(load_callback(settings), settings.callback_args, settings.callback_kwargs, queue=queue)
        except TypeError as exc:
            raise ConfigError(f"IZZATI_CALLBACK={settings.callback!r}: wrong signature: {exc}") from None
        runner = jobs.runner(invoker)
        thread = critical_thread(runner.run, "izzati-jobs", stop_for_restart)
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
