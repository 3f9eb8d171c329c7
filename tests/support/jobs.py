"""Reading what a job store keeps, whichever store it is."""

from __future__ import annotations

from pathlib import Path

from izzati.jobs.model import ResultStream


def body_bytes(body: Path | ResultStream) -> bytes:
    """All the bytes of a stored result: a file's, or an object store's stream read to its end."""
    if isinstance(body, Path):
        return body.read_bytes()
    data = b"".join(body.chunks)
    assert len(data) == body.size
    return data
