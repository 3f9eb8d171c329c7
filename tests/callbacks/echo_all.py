"""Callbacks that echo what they received, in detail."""

from __future__ import annotations

import hashlib
from typing import Any


def handle(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
    """Echo text and, for each file, its name, size, type and sha256."""
    return {
        "text": text,
        "files": [
            {
                "filename": f.filename,
                "name": f.name,
                "size": f.size,
                "content_type": f.content_type,
                "sha256": hashlib.sha256(f.read()).hexdigest(),
            }
            for f in data
        ],
    }


def digest(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
    """Each file's size and sha256, read 1 MiB at a time (memory stays flat for any size)."""
    found = []
    for f in data:
        sha, size = hashlib.sha256(), 0
        while chunk := f.read(1024 * 1024):
            sha.update(chunk)
            size += len(chunk)
        found.append({"size": size, "sha256": sha.hexdigest()})
    return {"files": found}
