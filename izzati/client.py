"""`Frontend`: the Python client, speaking the original izzati wire protocol."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, Union
from urllib.parse import urljoin, urlsplit

import httpx

from .exceptions import IzzatiError
from .fields import Field, describe_inputs, route_path

__all__ = ["Frontend", "FileInput", "Job", "JobError"]

FileInput = Union[IO[bytes], bytes, str, "os.PathLike[str]", tuple[str, Any], tuple[str, Any, str]]
"""A file to send: an open binary file, bytes, a path, or `(filename, content[, content_type])`."""

Files = Iterable[FileInput] | Mapping[str, FileInput | list[FileInput]]
"""Files to send: parts named `file`, in order; or, for a typed service, `{"image": path}` by input name."""


class JobError(IzzatiError):
    """A job request failed, or the job has no result."""


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


def _parts(f: FileInput | None, files: Files, opened: list[IO[bytes]]) -> list[tuple[str, Any]]:
    """The multipart file parts: `f` and a list of files as parts named `file`, a mapping by name."""
    named: list[tuple[str, FileInput]] = [("file", f)] if f is not None else []
    if isinstance(files, Mapping):
        for name, given in files.items():
            named += [(name, each) for each in (given if isinstance(given, list) else [given])]
    else:
        named += [("file", each) for each in files]
    return [(name, _file_part(item, opened)) for name, item in named]


def _decoded(response: httpx.Response) -> Any:
    """A reply as `send` returns it: decoded JSON, or the bytes of anything else."""
    if response.headers.get("content-type") == "application/json":
        return response.json()
    return response.content


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
        files: Files = (),
        timeout: float | None = None,
        wait: float | None = None,
    ) -> Any:
        """POST text fields and files; return the decoded JSON reply, or the bytes of a file reply.

        `js` values are sent as form fields (a list value sends the key once per item); `f` and
        `files` are sent as parts named `file`, in order. Error replies are returned like any
        JSON reply (`{"error": ..., "detail": ...}`), as the original client did.

        With `wait=N` the request runs as a job (`Prefer: respond-async, wait=N`): the server
        answers at once when it ends within N seconds, else with the job, which this follows to
        its result. Either way the return value is the same as without `wait`.
        """
        if wait is None:
            return _decoded(self.request(js, f, files=files, timeout=timeout))
        prefer = {"Prefer": f"respond-async, wait={wait:g}"}
        limit = max(timeout if timeout is not None else self.timeout or 0.0, wait + 10.0)
        response = self.request(js, f, files=files, timeout=limit, headers=prefer)
        if response.status_code != 202:
            return _decoded(response)
        job = Job(self, response.json())
        job.wait(timeout)
        return job.result()

    def request(
        self,
        js: Mapping[str, Any] | None = None,
        f: FileInput | None = None,
        *,
        files: Files = (),
        timeout: float | None = None,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Like `send`, but return the whole `httpx.Response`."""
        with self._post(js, f, files, timeout, url, headers, stream=False) as response:
            return response

    def stream(
        self,
        js: Mapping[str, Any] | None = None,
        f: FileInput | None = None,
        *,
        files: Files = (),
        timeout: float | None = None,
    ) -> Iterator[Any]:
        """POST like `send` and yield the reply's items as they arrive: each JSON item of a
        streamed reply (NDJSON), each chunk of a bytes stream, or the one item of a plain reply
        (an error reply too: `{"error": ..., "detail": ...}`)."""
        with self._post(js, f, files, timeout, None, None, stream=True) as response:
            media = response.headers.get("content-type", "")
            if media == "application/x-ndjson":
                for line in response.iter_lines():
                    if line:
                        yield json.loads(line)
            elif media == "application/json":
                yield json.loads(response.read())
            else:
                yield from response.iter_bytes()

    @contextlib.contextmanager
    def _post(
        self,
        js: Mapping[str, Any] | None,
        f: FileInput | None,
        files: Files,
        timeout: float | None,
        url: str | None,
        headers: Mapping[str, str] | None,
        *,
        stream: bool,
    ) -> Iterator[httpx.Response]:
        opened: list[IO[bytes]] = []
        try:
            parts = _parts(f, files, opened)
            data = {key: value if isinstance(value, (str, list)) else str(value) for key, value in (js or {}).items()}
            with self._client(timeout) as client:
                if not stream:
                    yield client.post(url or self.url, data=data or None, files=parts or None, headers=headers)
                    return
                request = client.build_request(
                    "POST", url or self.url, data=data or None, files=parts or None, headers=headers
                )
                response = client.send(request, stream=True)
                try:
                    yield response
                finally:
                    response.close()
        finally:
            for handle in opened:
                handle.close()

    def describe(self) -> list[Field] | None:
        """The inputs of a typed service (name, type, required, default, description, choices,
        bounds, accepted files), read from its `/openapi.json`; None for a classic `(text, data)`
        service. Raises `IzzatiError` when the schema cannot be read."""
        with self._client() as client:
            response = client.get(urljoin(self.url, "openapi.json"))
        if response.status_code != 200:
            raise IzzatiError(
                f"{urljoin(self.url, 'openapi.json')}: HTTP {response.status_code}: {response.text[:200]}"
            )
        document = response.json()
        return describe_inputs(document, route_path(document, urlsplit(self.url).path))

    @contextlib.contextmanager
    def open(
        self, js: Mapping[str, Any] | None = None, f: FileInput | None = None, *, files: Files = ()
    ) -> Iterator[httpx.Response]:
        """POST like `send` and give the `httpx.Response` unread, to stream its body."""
        with self._post(js, f, files, None, None, None, stream=True) as response:
            yield response

    def _client(self, timeout: float | None = None) -> httpx.Client:
        return httpx.Client(timeout=self.timeout if timeout is None else timeout, headers=self.headers)

    def submit(
        self,
        js: Mapping[str, Any] | None = None,
        f: FileInput | None = None,
        *,
        files: Files = (),
        idempotency_key: str | None = None,
        callback_url: str | None = None,
    ) -> Job:
        """Send the request as a job (`POST /jobs`) and return its handle at once."""
        headers = {}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if callback_url:
            headers["Callback-URL"] = callback_url
        response = self.request(js, f, files=files, url=urljoin(self.url, "jobs"), headers=headers)
        if response.status_code != 202:
            raise JobError(f"submitting the job failed with {response.status_code}: {response.text[:200]}")
        return Job(self, response.json())


class Job:
    """A job submitted with `Frontend.submit`: `status()`, `wait()`, `result()`, `cancel()`."""

    def __init__(self, frontend: Frontend, status: dict[str, Any]) -> None:
        self.frontend = frontend
        self.id: str = status["id"]
        self.url = urljoin(frontend.url, f"jobs/{self.id}")  # relative: the service may be mounted under a prefix
        self.last = status

    def status(self) -> dict[str, Any]:
        """The job's current status record."""
        with self.frontend._client() as client:
            response = client.get(self.url)
        if response.status_code != 200:
            raise JobError(f"job {self.id}: {response.status_code} {response.text[:200]}")
        self.last = response.json()
        return self.last

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> dict[str, Any]:
        """Poll until the job is done, failed or cancelled; raise TimeoutError after `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status()
            if status["status"] in ("done", "failed", "cancelled"):
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.id} is still {status['status']} after {timeout} s")
            time.sleep(poll)

    def result(self) -> Any:
        """What `send` would have returned: the JSON reply or the file's bytes (409 raises)."""
        with self.frontend._client() as client:
            response = client.get(self.url + "/result")
        if response.status_code == 409:
            raise JobError(f"job {self.id} has no result: {response.json().get('detail')}")
        return _decoded(response)

    def cancel(self) -> dict[str, Any]:
        """Cancel the job; return its status."""
        with self.frontend._client() as client:
            response = client.delete(self.url)
        self.last = response.json()
        return self.last
