"""File parameters: `izzati.File` (one upload, the object `data` holds), and `izzati.Accept`, the
media types and size a file parameter takes, checked before the callback runs."""

from __future__ import annotations

import fnmatch
from typing import Any

from pydantic import PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from ..files import UploadedFile

__all__ = ["File", "Accept", "file_type", "FILE_MARK"]

File = UploadedFile
"""An uploaded file parameter: `def callback(image: izzati.File)`; `list[izzati.File]` for several."""

FILE_MARK = "x-izzati-file"
"""The JSON-schema key that marks a file field (its value: the accepted media types, or [])."""


class Accept:
    """What a file parameter takes: `Annotated[izzati.File, izzati.Accept("image/*", max_bytes=5_000_000)]`.

    Arguments:
        media_types: accepted media types, with wildcards (`image/*`), or file name endings
            (`.csv`); none: any.
        max_bytes: the largest file accepted (None: only the request's own limit).
    """

    __slots__ = ("media_types", "max_bytes")

    def __init__(self, *media_types: str, max_bytes: int | None = None) -> None:
        if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes < 0):
            raise ValueError(f"Accept(max_bytes=...) must be a whole number of bytes, not {max_bytes!r}")
        self.media_types = tuple(media_types)
        self.max_bytes = max_bytes

    def accepts(self, upload: UploadedFile) -> bool:
        """Whether `upload`'s media type (or its name's ending) is one of the accepted."""
        if not self.media_types:
            return True
        for accepted in self.media_types:
            if accepted.startswith("."):
                if upload.filename.lower().endswith(accepted.lower()):
                    return True
            elif fnmatch.fnmatchcase(upload.mimetype, accepted.lower()):
                return True
        return False

    def __repr__(self) -> str:
        types = ", ".join(repr(each) for each in self.media_types)
        size = f", max_bytes={self.max_bytes}" if self.max_bytes is not None else ""
        return f"Accept({types}{size})"


def _checker(accept: Accept | None) -> Any:
    def check(value: Any) -> UploadedFile:
        if not isinstance(value, UploadedFile):
            raise PydanticCustomError(
                "file_expected", "expected an uploaded file (a multipart file part), not {kind}", {"kind": _kind(value)}
            )
        if accept is None:
            return value
        if not accept.accepts(value):
            raise PydanticCustomError(
                "file_type",
                "the file '{filename}' is {media_type}; accepted: {accepted}",
                {"filename": value.filename, "media_type": value.mimetype, "accepted": ", ".join(accept.media_types)},
            )
        if accept.max_bytes is not None and value.size > accept.max_bytes:
            raise PydanticCustomError(
                "file_too_large",
                "the file '{filename}' has {size} bytes; at most {max_bytes} are accepted",
                {"filename": value.filename, "size": value.size, "max_bytes": accept.max_bytes},
            )
        return value

    return check


def _kind(value: Any) -> str:
    return "a text field" if isinstance(value, str) else f"a {type(value).__name__}"


def file_type(accept: Accept | None) -> list[Any]:
    """The pydantic metadata of a file field: its check, and its JSON schema (a binary string)."""
    schema: dict[str, Any] = {
        "type": "string",
        "format": "binary",
        FILE_MARK: list(accept.media_types) if accept else [],
    }
    if accept is not None and accept.max_bytes is not None:
        schema["x-izzati-max-bytes"] = accept.max_bytes
    return [PlainValidator(_checker(accept)), WithJsonSchema(schema)]
