"""`izzati run` and `izzati worker` (with `--reload`: a watcher that restarts the server on changes)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

from .._process import stop_process_group
from . import EXIT_OK, RUN_OPTIONS, WORKER_OPTIONS, say

__all__ = ["run", "worker"]


def run(args: argparse.Namespace) -> int:
    """Serve the callback the arguments and settings name."""
    from ..assembly import configure_logging, load_settings
    from ..launch import run_web

    options = {name: getattr(args, name) for name in RUN_OPTIONS.values()}
    settings = load_settings(**_callbacks(args.callback), **options)
    if args.reload:
        # The watcher never imports the user's code: each (re)start is a fresh `izzati run` child.
        return _reload(args)
    configure_logging(settings)
    _import_from_cwd()
    run_web(settings)
    return EXIT_OK


def _callbacks(named: list[str]) -> dict[str, str | None]:
    """`izzati run mod:fn` names the callback; `izzati run /=mod:fn /classify=mod:Cls` the routes."""
    if not named:
        return {}
    if len(named) == 1 and "=" not in named[0]:
        return {"callback": named[0]}
    return {"routes": ",".join(named)}


def worker(args: argparse.Namespace) -> int:
    """Run the worker the arguments and settings name."""
    from ..assembly import configure_logging, load_settings
    from ..launch import run_worker

    overrides = {name: getattr(args, name) for name in WORKER_OPTIONS.values()}
    settings = load_settings(worker=args.worker_target, **overrides)
    configure_logging(settings)
    _import_from_cwd()
    run_worker(settings)
    return EXIT_OK


def _import_from_cwd() -> None:
    # Like `uvicorn app:app`: the project you are in is importable without PYTHONPATH.
    cwd = os.getcwd()
    if cwd in sys.path:
        sys.path.remove(cwd)
    sys.path.insert(0, cwd)


def _reload(args: argparse.Namespace) -> int:
    import logging

    import watchfiles

    logging.getLogger("watchfiles").setLevel(logging.ERROR)  # its own "KeyboardInterrupt caught" line
    command = [sys.executable, "-m", "izzati.cli", "run"]
    command += args.callback
    for flag, name in RUN_OPTIONS.items():
        value = getattr(args, name)
        if value is not None:
            command += [flag, str(value)]
    cwd = os.getcwd()
    say(f"reloading on changes to .py files under {cwd}")

    def stop_watching(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # ends watchfiles' wait for changes, whichever signal arrived

    signal.signal(signal.SIGTERM, stop_watching)
    signal.signal(signal.SIGHUP, stop_watching)
    child = subprocess.Popen(command, process_group=0)
    try:
        for changes in watchfiles.watch(
            cwd, watch_filter=watchfiles.PythonFilter(), debounce=400, raise_interrupt=False
        ):
            names = sorted({os.path.relpath(path, cwd) for _, path in changes})
            say(f"{', '.join(names)} changed, restarting")
            stop_process_group(child)
            child = subprocess.Popen(command, process_group=0)
    finally:
        stop_process_group(child)
    return EXIT_OK
