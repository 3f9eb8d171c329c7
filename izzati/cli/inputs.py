"""`izzati send URL --inputs`: a typed service's inputs, printed from its schema; and the check of
`izzati send`'s fields and files against them before anything is sent."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import IzzatiError, UsageError
from ..fields import Field, check_inputs

if TYPE_CHECKING:
    from ..client import Frontend

__all__ = ["named_files", "print_inputs", "check_before_sending"]


def named_files(items: Sequence[str]) -> list[str] | dict[str, list[str]]:
    """`-f PATH` (a part named `file`) or `-f NAME=PATH` (the input NAME of a typed service)."""
    named: dict[str, list[str]] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if os.path.isfile(item) or not sep or not name:
            name, path = "file", item
        if not os.path.isfile(path):
            raise UsageError(f"-f {item}: no such file")
        named.setdefault(name, []).append(path)
    if list(named) in ([], ["file"]):
        return named.get("file", [])
    return named


def _type(field: Field) -> str:
    kind = field["type"] + ("[]" if field["multiple"] else "")
    return kind


def _line(field: Field) -> str:
    notes = ["required" if field["required"] else ""]
    if field["choices"]:
        notes.append("one of " + ", ".join(str(choice) for choice in field["choices"]))
    if field["minimum"] is not None or field["maximum"] is not None:
        low = "" if field["minimum"] is None else f"{field['minimum']:g} <= "
        high = "" if field["maximum"] is None else f" <= {field['maximum']:g}"
        notes.append(f"{low}value{high}")
    if field["has_default"] and not field["required"]:
        notes.append(f"default {field['default']!r}")
    if field["type"] == "file":
        accepted = ", ".join(field["accept"]) or "any file"
        notes.append(f"{accepted} (-f {field['name']}=PATH)")
    if field["multiple"]:
        notes.append("repeat to send several")
    said = "; ".join(note for note in notes if note)
    description = f" — {field['description']}" if field["description"] else ""
    return f"  {field['name']:<16} {_type(field):<10} {said}{description}".rstrip()


def _fields(frontend: Frontend) -> list[Field] | None:
    try:
        return frontend.describe()
    except (IzzatiError, ValueError):
        return None


def print_inputs(frontend: Frontend) -> int:
    """Print the inputs of the service (exit code 0), or say it takes the classic text and files."""
    fields = _fields(frontend)
    if fields is None:
        print("this service takes any text fields (key=value) and files (-f PATH): its callback is (text, data)")
        return 0
    print(f"inputs of {frontend.url}:")
    for field in fields:
        print(_line(field))
    return 0


def check_before_sending(frontend: Frontend, text: dict[str, Any], files: list[str] | dict[str, list[str]]) -> None:
    """Raise `UsageError` naming every input that a typed service would refuse (nothing is sent)."""
    fields = _fields(frontend)
    if fields is None:
        return
    counts = {name: len(paths) for name, paths in files.items()} if isinstance(files, dict) else {}
    if isinstance(files, list) and files:
        counts["file"] = len(files)
    problems = check_inputs(fields, text, counts)
    if problems:
        listed = "; ".join(problems)
        raise UsageError(f"not sent: {listed} (izzati send {frontend.url} --inputs lists the inputs)")
