"""Uploaded files handed to callbacks, and safe file names."""

from __future__ import annotations

import os
import shutil
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

__all__ = ["UploadedFile", "safe_filename"]

_COPY_BUFFER = 1024 * 1024
_MAX_NAME_BYTES = 255


def safe_filename(filename: str, default: str = "upload") -> str:
    """Reduce a client-sent file name to one plain name that cannot leave a directory."""
    name = filename.replace("\\", "/").split("/")[-1]
    name = unicodedata.normalize("NFC", name)
    # control characters (NUL included) have no place in a file name on any system
    name = "".join(ch for ch in name if unicodedata.category(ch) != "Cc").strip()
    name = name.lstrip(".").strip()
    if not name:
        return default
    if len(name.encode()) > _MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = dot + ext if dot and 0 < len(ext.encode()) <= 16 else ""
        stem = name[: len(name) - len(ext)]
        budget = _MAX_NAME_BYTES - len(ext.encode())
        stem = stem.encode()[:budget].decode(errors="ignore")
        name = stem + ext
    return name


class UploadedFile:
    """One file from a request, with the surface of werkzeug's `FileStorage` that callbacks used.

    Arguments:
        stream: a readable, seekable binary file holding the upload (spooled to disk when large).
        filename: the name exactly as the client sent it.
        name: the form field name the file came in (`file` for the original clients).
        content_type: the part's `Content-Type` as sent.
        headers: all headers of the multipart part.
    """

    def __init__(
        self,
        stream: IO[bytes],
        filename: str,
        *,
        name: str = "file",
        content_type: str = "application/octet-stream",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.stream = stream
        self.filename = filename
        self.name = name
        self.content_type = content_type
        self.headers: Mapping[str, str] = dict(headers or {})

    @property
    def mimetype(self) -> str:
        """The media type without parameters, lower-cased (`text/plain`)."""
        return self.content_type.split(";", 1)[0].strip().lower()

    @property
    def mimetype_params(self) -> dict[str, str]:
        """The parameters of the media type (`{"charset": "utf-8"}`)."""
        params: dict[str, str] = {}
        for item in self.content_type.split(";")[1:]:
            key, _, value = item.partition("=")
            if key.strip():
                params[key.strip().lower()] = value.strip().strip('"')
        return params

    @property
    def size(self) -> int:
        """The size of the upload in bytes."""
        position = self.stream.tell()
        end = self.stream.seek(0, os.SEEK_END)
        self.stream.seek(position)
        return end

    @property
    def content_length(self) -> int:
        """The size of the upload in bytes (werkzeug's name for `size`)."""
        return self.size

    def read(self, size: int = -1) -> bytes:
        """Read up to `size` bytes (all by default) from the current position."""
        return self.stream.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move the read position, as `io.IOBase.seek`."""
        return self.stream.seek(offset, whence)

    def tell(self) -> int:
        """Return the read position."""
        return self.stream.tell()

    def save(self, dst: str | os.PathLike[str] | IO[bytes], buffer_size: int = _COPY_BUFFER) -> Path | None:
        """Write the whole upload to a path, an open binary file, or into a directory.

        A path is written exactly there. An existing directory gets the file under its own
        name, reduced by `safe_filename` so that no name can escape the directory; the path
        written is returned.
        """
        if self.stream.seekable():
            self.stream.seek(0)
        if not isinstance(dst, (str, os.PathLike)):
            shutil.copyfileobj(self.stream, dst, buffer_size)
            return None
        target = Path(dst)
        if target.is_dir():
            directory = target.resolve()
            target = directory / safe_filename(self.filename)
            if target.resolve().parent != directory:
                raise ValueError(f"refusing to save {self.filename!r} outside {str(directory)!r}")
        with open(target, "wb") as out:
            shutil.copyfileobj(self.stream, out, buffer_size)
        return target

    def close(self) -> None:
        """Close and delete the temporary file behind the upload."""
        self.stream.close()

    @property
    def closed(self) -> bool:
        """Whether the upload was closed."""
        return self.stream.closed

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.stream)

    def __bool__(self) -> bool:
        return bool(self.filename)

    def __enter__(self) -> UploadedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<UploadedFile {self.filename!r} ({self.content_type}) field={self.name!r}>"
