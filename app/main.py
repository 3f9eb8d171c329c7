"""`python -m app [web|worker]`: settings → service; every startup problem is one clear line."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from izzati.assembly import configure_logging, load_settings
from izzati.exceptions import IzzatiError
from izzati.launch import run_web, run_worker
from izzati.settingshelp import settings_help

__all__ = ["main", "usage"]


def usage() -> str:
    """The `--help` text: commands and every setting with its default."""
    lines = [
        "usage: python -m app [web|worker] [--help]",
        "",
        "  web     serve the callback over HTTP (default); with IZZATI_QUEUE_URL=memory:// it also",
        "          starts the worker as a child process",
        "  worker  run only the background worker, fed by the networked queue",
        "",
        settings_help(),
    ]
    return "\n".join(lines)


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
        configure_logging(settings)
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
