"""Settings → callback, queue and processes; every startup problem is one clear line."""

from __future__ import annotations

import logging
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from izzati import Backend, background
from izzati.exceptions import ConfigError, IzzatiError
from izzati.inputs import Limits
from izzati.loader import check_signature, extend_path, import_callable
from izzati.queues import MemoryQueue, Queue, open_queue
from izzati.settings import Settings

__all__ = ["main", "usage"]

logger = logging.getLogger("izzati.app")


def usage() -> str:
    """The `--help` text: commands and every setting with its default."""
    lines = [
        "usage: python -m app [web|worker] [--help]",
        "",
        "  web     serve the callback over HTTP (default); with IZZATI_QUEUE_URL=memory:// it also",
        "          starts the worker as a child process",
        "  worker  run only the background worker, fed by the networked queue",
        "",
        "Settings come from the environment or a .env file in the working directory:",
        "",
    ]
    for name, default, description in Settings.variables():
        lines.append(f"  {name}={default}")
        lines.extend(textwrap.wrap(description, 90, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)


def load_settings() -> Settings:
    """Read the settings, turning validation errors into one ConfigError line."""
    try:
        return Settings()
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


def load_worker(settings: Settings) -> Callable[..., Any]:
    """Import the worker target and check it can be called as `target(q, *args, **kwargs)`."""
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


def open_settings_queue(settings: Settings) -> Queue:
    """Open the queue the settings name, waiting a bounded time for a broker to come up."""
    if settings.queue_url.startswith("memory:"):
        return MemoryQueue()
    return open_queue(
        settings.queue_url,
        name=settings.queue_name,
        connect_timeout=settings.queue_connect_timeout,
        redelivery_timeout=settings.redelivery_timeout,
    )


def run_web(settings: Settings) -> None:
    """Serve the callback; with memory:// also start the worker next to it."""
    callback = import_callable(settings.callback, "IZZATI_CALLBACK")
    memory = settings.queue_url.startswith("memory:")
    target = load_worker(settings) if memory else None
    limits = Limits(
        max_body_bytes=settings.max_body_bytes,
        max_files=settings.max_files,
        max_fields=settings.max_fields,
        max_field_bytes=settings.max_field_bytes,
    )
    queue = open_settings_queue(settings)
    try:
        backend = Backend(
            callback, settings.callback_args, settings.callback_kwargs, queue=queue, limits=limits, debug=settings.debug
        )
    except TypeError as exc:
        raise ConfigError(f"IZZATI_CALLBACK={settings.callback!r}: wrong signature: {exc}") from None
    if target is not None:
        background(target, settings.worker_args, settings.worker_kwargs, queue=queue)
    backend.run(settings.host, settings.port, log_level=settings.log_level, workers=settings.workers)


def run_worker(settings: Settings) -> None:
    """Run the worker target in this process until it returns or the process is stopped."""
    if settings.queue_url.startswith("memory:"):
        raise ConfigError(
            f"IZZATI_QUEUE_URL={settings.queue_url!r}: a separate worker needs a networked queue; "
            "set IZZATI_QUEUE_URL=redis://host:6379/0 (memory:// runs the worker inside `python -m app`)"
        )
    target = load_worker(settings)
    queue = open_settings_queue(settings)
    logger.info("worker %s started on %s", settings.worker, settings.queue_url)
    try:
        target(queue, *settings.worker_args, **settings.worker_kwargs)
    finally:
        queue.close()


def main(argv: Sequence[str]) -> int:
    """Entry point of `python -m app`; returns the exit code."""
    args = list(argv)
    if any(arg in ("-h", "--help", "help") for arg in args):
        print(usage())
        return 0
    command = args[0] if args else "web"
    if command not in ("web", "worker") or len(args) > 1:
        print(f"python -m app: unknown arguments {' '.join(args)!r}; see python -m app --help", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
        logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
        extend_path(settings.callback_path)
        if command == "worker":
            run_worker(settings)
        else:
            run_web(settings)
    except IzzatiError as exc:
        # one line, no traceback: these are the user's settings, not izzati's bugs
        print(f"izzati: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0
