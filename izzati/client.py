"""`Frontend`: the Python client, speaking the original izzati wire protocol."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import IO, Any, Union

import httpx

__all__ = ["Frontend", "FileInput"]

FileInput = Union[IO[bytes], bytes, str, "os.PathLike[str]", tuple[str, Any], tuple[str, Any, str]]
"""A file to send: an open binary file, bytes, a path, or `(filename, content[, content_type])`."""


def _file_part(item: FileInput, opened: list[IO[bytes]]) -> tuple[str, Any] | tuple[str, Any, str]:
    if isinstance(item, tuple):
        return item
    if isinstance(item, (bytes, bytearray)):
        return ("file", bytes(item))
    if isinstance(item, (str, os.PathLike)):
        handle = open(item, "rb")  # noqa: SIM115 - closed by send()
        opened.append(handle)
        return (os.path.basename(os.fspath(item)), handle)
    name = getattr(item, "name", None)
    filename = os.path.basename(name) if isinstance(name, str) else "file"
    return (filename, item)


class Frontend:
    """A client for an izzati backend: `Frontend(url).send(js={...}, f=open(path, "rb"))`.

    Arguments:
        url: the backend's address, e.g. `http://127.0.0.1:5020/`.
        timeout: seconds to wait for connect, each read and write (None waits forever).
        headers: headers sent with every request (for example an `Authorization`).
    """

    def __init__(self, url: str, *, timeout: float | None = 60.0, headers: Mapping[str, str] | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.headers = dict(headers or {})

    def send(
        self,
        js: Mapping[str, Any] | None = None,
        f: FileInput | None = None,
        *,
        files: Iterable[FileInput] = (),
        timeout: float | None = None,
    ) -> Any:
        """POST text fields and files; return the decoded JSON reply, or the bytes of a file reply.

        `js` values are sent as form fields (a list value sends the key once per item); `f` and
        `files` are sent as parts named `file`, in order. Error replies are returned like any
        JSON reply (`{"error": ..., "detail": ...}`), as the original client did.
        """
        response = self.request(js, f, files=files, timeout=timeout)
        if response.headers.get("content-type") == "application/json":
            return response.json()
        return response.content

    def request(
        self,
        js: Mapping[str, Any] | None = None,
        f: FileInput | None = None,
        *,
        files: Iterable[FileInput] = (),
        timeout: float | None = None,
    ) -> httpx.Response:
        """Like `send`, but return the whole `httpx.Response`."""
        opened: list[IO[bytes]] = []
        try:
            items = ([f] if f is not None else []) + list(files)
            parts = [("file", _file_part(item, opened)) for item in items]
            data = {key: value if isinstance(value, (str, list)) else str(value) for key, value in (js or {}).items()}
            with httpx.Client(timeout=self.timeout if timeout is None else timeout, headers=self.headers) as client:
                return client.post(self.url, data=data or None, files=parts or None)
        finally:
            for handle in opened:
                handle.close()
