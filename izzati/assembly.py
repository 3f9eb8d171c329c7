"""Settings → the parts of a service: the callback, the worker target, the queue, the job
service, the `Backend`; each fails fast with one line naming the setting (`ConfigError`).
`launch` puts them together into processes."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from ._process import bound_socket
from .exceptions import ConfigError, QueueUnavailable
from .jobs.dirstore import DirectoryJobStore
from .jobs.service import JobService
from .jobs.store import JobStore
from .loader import check_signature, extend_path, import_callable
from .queues import MemoryQueue, Queue, mask_url, open_queue
from .settings import Settings

if TYPE_CHECKING:
    from .web.backend import Backend
    from .web.inputs import Limits

__all__ = [
    "load_settings",
    "configure_logging",
    "is_memory",
    "load_callback",
    "load_routes",
    "load_worker",
    "worker_routes",
    "open_settings_queue",
    "default_job_dir",
    "build_jobs",
    "limits_of",
    "batch_options",
    "named_callbacks",
    "build_backend",
    "check_port",
    "serve_worker_metrics",
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


def is_memory(settings: Settings) -> bool:
    return settings.queue_url.startswith("memory:")


def load_callback(settings: Settings) -> Callable[..., Any]:
    """Import the web callback named by IZZATI_CALLBACK (with IZZATI_ROUTES: the one at `/`, or
    the first: the callback jobs run)."""
    routes = load_routes(settings)
    if routes is None:
        extend_path(settings.callback_path)
        return import_callable(settings.callback, "IZZATI_CALLBACK")
    return routes.get("/") or next(iter(routes.values()))


def load_routes(settings: Settings) -> dict[str, Callable[..., Any]] | None:
    """Import the callbacks IZZATI_ROUTES names, by path; None when it is not set."""
    if not settings.routes.strip():
        return None
    from .web.routes import parse_routes

    try:
        named = parse_routes(settings.routes)
    except ValueError as exc:
        raise ConfigError(f"IZZATI_ROUTES={settings.routes!r}: {exc}") from None
    extend_path(settings.callback_path)
    return {path: import_callable(target, "IZZATI_ROUTES") for path, target in named.items()}


def worker_routes(settings: Settings, paths: list[str]) -> list[str]:
    """The routes among `paths` whose jobs a worker runs: IZZATI_WORKER_ROUTES, or all of them."""
    named = [path.strip() for path in settings.worker_routes.split(",") if path.strip()]
    unknown = [path for path in named if path not in paths]
    if unknown:
        raise ConfigError(
            f"IZZATI_WORKER_ROUTES={settings.worker_routes!r}: no route {', '.join(unknown)} "
            f"(the routes: {', '.join(paths)})"
        )
    return named or paths


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
    if is_memory(settings):
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
    if settings.job_store:
        from .jobs.redisstore import open_shared_store

        store: JobStore = open_shared_store(
            settings.job_store,
            settings.queue_url,
            name=settings.queue_name,
            ttl=settings.job_ttl,
            connect_timeout=settings.queue_connect_timeout,
        )
    elif is_memory(settings) and not settings.job_dir:
        # a memory queue lives and dies with this process tree, and so do its jobs
        return JobService.local(**options)
    else:
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


def batch_options(settings: Settings) -> dict[str, Any]:
    """`batch_size` and `batch_wait_ms` for an `Invoker` or a `Backend`."""
    return {"batch_size": settings.batch_size, "batch_wait_ms": settings.batch_wait_ms}


def named_callbacks(spec: str, setting: str) -> dict[str, Callable[..., Any]]:
    """'name=module:function, ...' (IZZATI_CHAT, IZZATI_EMBEDDINGS) as name → imported callback."""
    found: dict[str, Callable[..., Any]] = {}
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        name, sep, target = (piece.strip() for piece in entry.partition("="))
        if not sep or not name or not target:
            raise ConfigError(f"{setting}={spec!r}: {entry!r} is not 'model-name=module:function'")
        if name in found:
            raise ConfigError(f"{setting}={spec!r}: the model name {name!r} is given twice")
        found[name] = import_callable(target, setting)
    return found


def build_backend(settings: Settings, queue: Queue | None, jobs: JobService | None = None) -> Backend:
    """Import the callback and make its `Backend`; a wrong signature is a ConfigError."""
    from .web.backend import Backend

    callback: Callable[..., Any] | dict[str, Callable[..., Any]] = load_routes(settings) or load_callback(settings)
    chat = named_callbacks(settings.chat, "IZZATI_CHAT")
    embeddings = named_callbacks(settings.embeddings, "IZZATI_EMBEDDINGS")
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
            **batch_options(settings),
            api_key=settings.api_key or None,
            cors_origins=[origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()],
            access_log=settings.access_log,
            metrics=settings.metrics,
            traces=settings.traces,
            ready_without_workers=settings.ready_without_workers,
            job_service=jobs,
            chat=chat,
            embeddings=embeddings,
            mcp=settings.mcp,
            mcp_wait=settings.mcp_wait,
        )
    except TypeError as exc:
        setting = (
            f"IZZATI_ROUTES={settings.routes!r}"
            if settings.routes.strip()
            else f"IZZATI_CALLBACK={settings.callback!r}"
        )
        raise ConfigError(f"{setting}: wrong signature: {exc}") from None
    except ValueError as exc:  # a route's path
        raise ConfigError(f"IZZATI_ROUTES={settings.routes!r}: {exc}") from None


def serve_worker_metrics(settings: Settings, queue: Queue, jobs: JobService | None) -> None:
    """Serve this worker's metrics on IZZATI_METRICS_HOST:IZZATI_METRICS_PORT from a thread: its
    items taken, job durations and batches, and its queues now."""
    from prometheus_client import CONTENT_TYPE_LATEST

    from .metrics.collect import Scrape, exposition
    from .metrics.port import serve_metrics_port

    queues: list[tuple[str, Any, Callable[[], int] | None]] = [(settings.queue_name, queue, None)]
    if jobs is not None:
        queues.append((f"{settings.queue_name}:jobs", jobs.queue, None))
    assert settings.metrics_port is not None
    scrape = Scrape(queues)
    host, port = settings.metrics_host, settings.metrics_port
    try:
        serve_metrics_port(host, port, lambda: exposition(scrape), CONTENT_TYPE_LATEST)
    except OSError as exc:
        raise ConfigError(
            f"IZZATI_METRICS_HOST={host!r} IZZATI_METRICS_PORT={port}: cannot listen there: {exc.strerror}"
        ) from None
    logger.info("worker metrics on http://%s:%d/metrics", host, port)


def check_port(host: str, port: int) -> None:
    """Fail with one line, before anything starts, when the address cannot be listened on."""
    try:
        bound_socket(host, port).close()
    except OSError as exc:
        raise ConfigError(f"IZZATI_HOST={host!r} IZZATI_PORT={port}: cannot listen there: {exc.strerror}") from None
