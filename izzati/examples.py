"""Built-in example callbacks: what the service runs when nothing is configured."""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["echo", "print_items"]


def echo(text: dict[str, Any], data: list[Any], q: Any = None) -> dict[str, Any]:
    """Echo `text` and the uploaded file names, and put `text` on the queue when there is one."""
    if q is not None:
        q.put(text)
    return {"text": text, "files": [upload.filename for upload in data]}


def print_items(q: Any) -> None:
    """Print each item taken from the queue to stdout, one JSON line per item, forever."""
    while True:
        item = q.get()
        line = json.dumps(item, ensure_ascii=False, default=repr)
        try:
            sys.stdout.write(line + "\n")
        except UnicodeEncodeError:  # a lone surrogate (valid JSON, no text): print it escaped
            sys.stdout.write(json.dumps(item, default=repr) + "\n")
        sys.stdout.flush()
        q.task_done()
