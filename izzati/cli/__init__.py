"""The `izzati` command: `izzati run mycode:handle`, `izzati worker`, `izzati send URL key=value -f file`,
`izzati settings`. This module parses; `serve` and `send` do the work."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .. import __version__
from ..exceptions import IzzatiError

__all__ = [
    "main",
    "parser",
    "say",
    "EXIT_OK",
    "EXIT_HTTP_ERROR",
    "EXIT_USAGE",
    "EXIT_CONNECTION",
    "RUN_OPTIONS",
    "WORKER_OPTIONS",
]

EXIT_OK = 0
"""The command did what it was asked; for `send`, the reply was 2xx."""
EXIT_HTTP_ERROR = 1
"""`send` got a reply that is not 2xx (the reply is still printed)."""
EXIT_USAGE = 2
"""Wrong arguments or settings: nothing was served or sent."""
EXIT_CONNECTION = 3
"""`send` could not connect, or the connection failed or timed out."""

# The options of `run` and `worker`, each an IZZATI_* setting: its help, type and default come from
# `Settings`, and the same table feeds the settings overrides and the `--reload` child's command line.
RUN_OPTIONS = {
    "--host": "host",
    "--port": "port",
    "--workers": "workers",
    "--worker": "worker",
    "--queue": "queue_url",
    "--log-level": "log_level",
}
WORKER_OPTIONS = {"--queue": "queue_url", "--log-level": "log_level"}


class _Parser(argparse.ArgumentParser):
    """argparse with errors as one `izzati: ...` line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"izzati: {message} (see `{self.prog} --help`)\n")


def parser() -> argparse.ArgumentParser:
    """The argument parser of the `izzati` command."""
    top = _Parser(
        prog="izzati",
        description="Serve a plain Python callback `def handle(text, data)` over HTTP, or call one.",
        epilog=(
            "examples:\n"
            "  izzati run mycode:handle --port 5020      # serve mycode.py's handle() on :5020\n"
            "  izzati send http://127.0.0.1:5020/ name=alice -f photo.jpg\n"
            "\n"
            "Each `run` and `worker` option overrides its IZZATI_* variable (environment or .env);\n"
            "`izzati settings` lists every variable. Exit codes: 0 ok, 1 HTTP error reply (send),\n"
            "2 wrong arguments or settings, 3 connection failed (send)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    top.add_argument("--version", action="version", version=f"izzati {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    run = commands.add_parser(
        "run",
        help="serve a callback over HTTP",
        description=(
            "Serve CALLBACK ('module:function', imported from the current directory first) over HTTP. "
            "Options left out come from IZZATI_* variables (environment or .env), then the defaults. "
            "With the default memory:// queue a worker process runs next to the server."
        ),
        allow_abbrev=False,
    )
    run.add_argument(
        "callback",
        nargs="*",
        help="'module:function' of the callback (IZZATI_CALLBACK); or several routes, each "
        "'PATH=module:function' (IZZATI_ROUTES), e.g. /=app:echo /classify=models:Classifier",
    )
    _setting_options(run, RUN_OPTIONS)
    run.add_argument(
        "--reload",
        action="store_true",
        help="development: restart when a .py file under the current directory changes",
    )

    worker = commands.add_parser(
        "worker",
        help="run the background worker on a networked queue",
        description="Run the worker target, fed by a networked queue (redis://...), until stopped.",
        allow_abbrev=False,
    )
    worker.add_argument("worker_target", nargs="?", metavar="WORKER", help="'module:function' (IZZATI_WORKER)")
    _setting_options(worker, WORKER_OPTIONS)

    from .dlq import add_parser as add_dlq_parser

    add_dlq_parser(commands)
    commands.add_parser(
        "settings",
        help="list every IZZATI_* setting with its default and meaning",
        description="Print every IZZATI_* setting (environment or .env) with its default and meaning.",
        allow_abbrev=False,
    )

    send = commands.add_parser(
        "send",
        help="send text fields and files to a backend, print the reply",
        description=(
            "POST text fields and files to URL the way the izzati clients do (multipart, files as parts "
            "named `file`). A JSON reply is printed to stdout, pretty. A file reply is written to -o PATH "
            "(`-o -` for stdout); without -o it is saved in the current directory under the name the "
            "server gives, and an existing file is never overwritten. To a typed service, the fields and "
            "files are checked against its inputs first (`--inputs` lists them). A streamed reply's "
            "items are printed as they come."
        ),
        allow_abbrev=False,
    )
    send.add_argument("url", help="the backend, e.g. http://127.0.0.1:5020/")
    send.add_argument("fields", nargs="*", metavar="key=value", help="a text field; repeat a key to send a list")
    send.add_argument(
        "-f",
        "--file",
        action="append",
        default=[],
        dest="files",
        metavar="[NAME=]PATH",
        help="a file (repeat); NAME=PATH sends it as the input NAME of a typed service",
    )
    send.add_argument(
        "--inputs",
        action="store_true",
        help="print the service's inputs (name, type, default, description), send nothing",
    )
    send.add_argument("-o", "--output", metavar="PATH", help="where to write a file reply ('-' for stdout)")
    send.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds to wait (default 60)")
    send.add_argument(
        "--stream", action="store_true", help="print a streamed reply's items as they arrive, one JSON line each"
    )
    send.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        dest="headers",
        metavar="'Name: value'",
        help="an extra request header, e.g. 'Authorization: Bearer KEY' (repeat)",
    )
    return top


def _setting_options(command: argparse.ArgumentParser, options: dict[str, str]) -> None:
    from ..settings import Settings
    from ..settingshelp import rows

    defaults = {name: default for name, default, _ in rows()}
    for flag, name in options.items():
        field = Settings.model_fields[name]
        variable = f"IZZATI_{name.upper()}"
        extra: dict[str, Any] = {"type": int} if field.annotation is int else {}
        if name == "log_level":
            extra = {"choices": ("critical", "error", "warning", "info", "debug"), "type": str.lower}
        help_text = f"{field.description} ({variable}, default {defaults[name] or 'empty'})"
        metavar = flag.lstrip("-").upper().replace("-", "_")
        command.add_argument(flag, dest=name, metavar=metavar, help=help_text.replace("%", "%%"), **extra)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `izzati` command with `argv` (default `sys.argv[1:]`); return the exit code."""
    args = parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        if args.command == "send":
            from .send import send

            return send(args)
        if args.command == "dlq":
            from .dlq import dlq

            return dlq(args)
        if args.command == "settings":
            from ..settingshelp import settings_help

            print(settings_help())
            return EXIT_OK
        from .serve import run, worker

        return run(args) if args.command == "run" else worker(args)
    except IzzatiError as exc:
        say(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK


def say(message: str) -> None:
    """Tell the user something on stderr, as one `izzati: ...` line."""
    print(f"izzati: {message}", file=sys.stderr, flush=True)
