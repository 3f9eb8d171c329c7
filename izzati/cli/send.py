"""`izzati send URL key=value -f file`: post text fields and files the way the izzati clients do."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from email.message import Message
from pathlib import Path
from typing import Any

from ..exceptions import UsageError
from . import EXIT_CONNECTION, EXIT_HTTP_ERROR, EXIT_OK, say
from .inputs import check_before_sending, named_files, print_inputs

__all__ = ["send"]


def send(args: argparse.Namespace) -> int:
    """Send the fields and files, print a JSON reply, save a file reply; return the exit code."""
    import httpx

    from ..client import Frontend

    fields = _fields(args.fields)
    headers = _headers(args.headers)
    files = named_files(args.files)
    if args.timeout <= 0:
        raise UsageError(f"--timeout {args.timeout}: must be more than 0")
    if not args.url.startswith(("http://", "https://")):
        raise UsageError(f"{args.url!r}: the URL must start with http:// or https://")
    try:
        frontend = Frontend(args.url, timeout=args.timeout, headers=headers)
        if args.inputs:
            return print_inputs(frontend)
        check_before_sending(frontend, fields, files)
        if args.stream:
            for item in frontend.stream(fields, files=files):
                if isinstance(item, bytes):
                    sys.stdout.buffer.write(item)
                    sys.stdout.buffer.flush()
                else:
                    print(json.dumps(item, ensure_ascii=False), flush=True)
            return EXIT_OK
        with frontend.open(fields, files=files) as response:
            if response.headers.get("content-type", "") == "application/x-ndjson":
                # a streamed reply: its items as they come, as a terminal user expects, --stream or not
                for line in response.iter_lines():
                    if line:
                        print(line, flush=True)
            else:
                response.read()
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise UsageError(f"{args.url!r}: {exc}") from None
    except httpx.TimeoutException:
        say(f"{args.url}: no reply within {args.timeout:g} s")
        return EXIT_CONNECTION
    except (httpx.TransportError, OSError) as exc:
        say(f"{args.url}: cannot connect: {exc}")
        return EXIT_CONNECTION
    ok = response.is_success
    if response.headers.get("content-type", "") == "application/x-ndjson":
        return EXIT_OK if ok else EXIT_HTTP_ERROR
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
        say(f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
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
    say(f"saved {len(content)} bytes ({kind}) to {target}")


def _reply_filename(disposition: str) -> str:
    """The server's filename for a file reply, reduced to a plain, visible name in this directory."""
    message = Message()
    message["content-disposition"] = disposition
    # safe_filename also drops leading dots: a server must not plant .env or .bashrc here
    from ..files import safe_filename  # here: only a file reply needs it, so `send` starts fast

    return safe_filename(message.get_filename() or "", default="izzati-reply.bin")
