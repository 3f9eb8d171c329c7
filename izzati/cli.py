"""The `izzati` command: `izzati run mycode:handle`, `izzati worker`, `izzati send URL key=value -f file`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from email.message import Message
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .exceptions import IzzatiError

__all__ = ["main", "parser", "EXIT_OK", "EXIT_HTTP_ERROR", "EXIT_USAGE", "EXIT_CONNECTION"]

EXIT_OK = 0
"""The command did what it was asked; for `send`, the reply was 2xx."""
EXIT_HTTP_ERROR = 1
"""`send` got a reply that is not 2xx (the reply is still printed)."""
EXIT_USAGE = 2
"""Wrong arguments or settings: nothing was served or sent."""
EXIT_CONNECTION = 3
"""`send` could not connect, or the connection failed or timed out."""

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class UsageError(Exception):
    """A problem with the command line, reported as one line and exit code 2."""


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
            "`python -m app --help` lists every variable. Exit codes: 0 ok, 1 HTTP error reply (send),\n"
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
    run.add_argument("callback", nargs="?", help="'module:function' of the callback (IZZATI_CALLBACK)")
    run.add_argument("--host", help="address to listen on (IZZATI_HOST, default 0.0.0.0)")
    run.add_argument("--port", type=int, help="port to listen on (IZZATI_PORT, default 5020)")
    run.add_argument("--workers", type=int, metavar="N", help="number of server processes (IZZATI_WORKERS)")
    _worker_options(run)
    run.add_argument("--log-level", choices=LOG_LEVELS, type=str.lower, help="(IZZATI_LOG_LEVEL, default info)")
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
    worker.add_argument("--queue", help="queue URL, e.g. redis://127.0.0.1:6379/0 (IZZATI_QUEUE_URL)")
    worker.add_argument("--log-level", choices=LOG_LEVELS, type=str.lower, help="(IZZATI_LOG_LEVEL, default info)")

    send = commands.add_parser(
        "send",
        help="send text fields and files to a backend, print the reply",
        description=(
            "POST text fields and files to URL the way the izzati clients do (multipart, files as parts "
            "named `file`). A JSON reply is printed to stdout, pretty. A file reply is written to -o PATH "
            "(`-o -` for stdout); without -o it is saved in the current directory under the name the "
            "server gives, and an existing file is never overwritten."
        ),
        allow_abbrev=False,
    )
    send.add_argument("url", help="the backend, e.g. http://127.0.0.1:5020/")
    send.add_argument("fields", nargs="*", metavar="key=value", help="a text field; repeat a key to send a list")
    send.add_argument("-f", "--file", action="append", default=[], dest="files", metavar="PATH", help="a file (repeat)")
    send.add_argument("-o", "--output", metavar="PATH", help="where to write a file reply ('-' for stdout)")
    send.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds to wait (default 60)")
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


def _worker_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--worker", help="'module:function' of the background worker (IZZATI_WORKER)")
    command.add_argument("--queue", help="queue URL: memory:// or redis://host:6379/0 (IZZATI_QUEUE_URL)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `izzati` command with `argv` (default `sys.argv[1:]`); return the exit code."""
    args = parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        if args.command == "send":
            return _send(args)
        if args.command == "run":
            return _run(args)
        return _worker(args)
    except (IzzatiError, UsageError) as exc:
        _say(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK


def _say(message: str) -> None:
    print(f"izzati: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- run, worker


def _run(args: argparse.Namespace) -> int:
    from .service import configure_logging, load_settings, run_web

    settings = load_settings(
        callback=args.callback,
        host=args.host,
        port=args.port,
        workers=args.workers,
        worker=args.worker,
        queue_url=args.queue,
        log_level=args.log_level,
    )
    if args.reload:
        # The watcher never imports the user's code: each (re)start is a fresh `izzati run` child.
        return _reload(args)
    configure_logging(settings)
    _import_from_cwd()
    run_web(settings)
    return EXIT_OK


def _worker(args: argparse.Namespace) -> int:
    from .service import configure_logging, load_settings, run_worker

    settings = load_settings(worker=args.worker_target, queue_url=args.queue, log_level=args.log_level)
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
    if args.callback is not None:
        command.append(args.callback)
    for option in ("host", "port", "workers", "worker", "queue", "log_level"):
        value = getattr(args, option)
        if value is not None:
            command += [f"--{option.replace('_', '-')}", str(value)]
    cwd = os.getcwd()
    _say(f"reloading on changes to .py files under {cwd}")

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
            _say(f"{', '.join(names)} changed, restarting")
            _stop_child(child)
            child = subprocess.Popen(command, process_group=0)
    finally:
        _stop_child(child)
    return EXIT_OK


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    """Stop a served child and the processes it started: SIGTERM to its group, then SIGKILL."""
    # The child leads its own process group, so a Ctrl+C reaches only this watcher and the
    # server's own worker processes get exactly one SIGTERM, like under `docker stop`.
    _signal_group(child.pid, signal.SIGTERM)
    try:
        child.wait(40)
    except subprocess.TimeoutExpired:
        _say(f"the server (pid {child.pid}) did not stop within 40 s: killing it")
    deadline = time.monotonic() + 5
    while _group_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    _signal_group(child.pid, signal.SIGKILL)
    child.wait()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


# ---------------------------------------------------------------------------------------------- send


def _send(args: argparse.Namespace) -> int:
    import httpx

    from .client import Frontend

    fields = _fields(args.fields)
    headers = _headers(args.headers)
    for path in args.files:
        if not os.path.isfile(path):
            raise UsageError(f"-f {path}: no such file")
    if args.timeout <= 0:
        raise UsageError(f"--timeout {args.timeout}: must be more than 0")
    if not args.url.startswith(("http://", "https://")):
        raise UsageError(f"{args.url!r}: the URL must start with http:// or https://")
    try:
        response = Frontend(args.url, timeout=args.timeout, headers=headers).request(fields, files=args.files)
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise UsageError(f"{args.url!r}: {exc}") from None
    except httpx.TimeoutException:
        _say(f"{args.url}: no reply within {args.timeout:g} s")
        return EXIT_CONNECTION
    except (httpx.TransportError, OSError) as exc:
        _say(f"{args.url}: cannot connect: {exc}")
        return EXIT_CONNECTION
    ok = response.is_success
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            body = json.dumps(response.json(), indent=2, ensure_ascii=False)
        except ValueError:
            body = response.text
        print(body)
    elif not ok:
        print(response.text)
    else:
        _save(response, args.output)
    if not ok:
        _say(f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
        return EXIT_HTTP_ERROR
    return EXIT_OK


def _fields(items: Sequence[str]) -> dict[str, str | list[str]]:
    fields: dict[str, str | list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{item!r}: a text field is key=value (files go with -f PATH)")
        if key in fields:
            previous = fields[key]
            fields[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            fields[key] = value
    return fields


def _headers(items: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
            raise UsageError(f"--header {item!r}: expected 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def _save(response: Any, output: str | None) -> None:
    content: bytes = response.content
    kind = response.headers.get("content-type", "unknown type")
    if output == "-":
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    if output is not None:
        target = Path(output)
        try:
            target.write_bytes(content)
        except OSError as exc:
            raise UsageError(f"cannot write the reply to {str(target)!r}: {exc.strerror}") from None
    else:
        target = Path(_reply_filename(response.headers.get("content-disposition", "")))
        try:
            # never overwrite, and never follow a link planted under the server's chosen name
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            raise UsageError(
                f"the reply is a file ({len(content)} bytes, {kind}); {str(target)!r} already exists and "
                "was not overwritten: choose a name with -o PATH"
            ) from None
        except OSError as exc:
            raise UsageError(f"cannot write the reply to {str(target)!r}: {exc.strerror}") from None
        with os.fdopen(fd, "wb") as out:
            out.write(content)
    _say(f"saved {len(content)} bytes ({kind}) to {target}")


def _reply_filename(disposition: str) -> str:
    """The server's filename for a file reply, reduced to a plain, visible name in this directory."""
    message = Message()
    message["content-disposition"] = disposition
    # safe_filename also drops leading dots: a server must not plant .env or .bashrc here
    from .files import safe_filename  # here: only a file reply needs it, so `send` starts fast

    return safe_filename(message.get_filename() or "", default="izzati-reply.bin")


if __name__ == "__main__":
    sys.exit(main())
