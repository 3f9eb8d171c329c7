"""Wire parsing: a request body in any of the clients' encodings becomes `text` and `data`."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import IO, Any
from urllib.parse import parse_qsl

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.types import Receive, Scope

from .exceptions import BadRequest, HTTPError, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from .files import UploadedFile

__all__ = ["Limits", "ClientDisconnected", "read_request", "media_type_of"]

MiB = 1024 * 1024

logger = logging.getLogger("izzati")
# python-multipart logs a warning for every malformed byte it meets; a hostile client could use
# that to flood the logs, and izzati already answers such bodies with one 400.
logging.getLogger("python_multipart.multipart").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may carry; every one has a safe default."""

    max_body_bytes: int = 100 * MiB
    max_files: int = 1000
    max_fields: int = 1000
    max_field_bytes: int = 1 * MiB
    max_part_header_bytes: int = 8 * 1024
    max_text_bytes: int = 8 * MiB
    max_header_bytes: int = 16 * 1024
    read_timeout: float = 30.0
    spool_bytes: int = 1 * MiB
    upload_dir: str | None = field(default=None)


class ClientDisconnected(Exception):
    """The client went away before the body was complete."""


def media_type_of(scope: Scope) -> tuple[str, dict[bytes, bytes], int | None]:
    """Return the request's media type, its parameters and its declared Content-Length."""
    content_type = b""
    length: int | None = None
    for key, value in scope["headers"]:
        if key == b"content-type":
            content_type = value
        elif key == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise BadRequest(f"Content-Length {value.decode('latin-1')!r} is not a number") from None
    media, params = parse_options_header(content_type)
    return media.decode("latin-1").lower(), params, length


async def _receive_body(receive: Receive, limits: Limits, on_chunk: Callable[[bytes], None]) -> None:
    """Hand each body chunk to `on_chunk`, enforcing the size limit and an idle read timeout."""
    total = 0
    loop = asyncio.get_running_loop()
    try:
        # one timer per request, pushed on by each chunk: an idle bound, not a total, so a big
        # upload on a slow link is fine and a stall is not
        async with asyncio.timeout(limits.read_timeout) as deadline:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnected()
                chunk: bytes = message.get("body", b"")
                if chunk:
                    total += len(chunk)
                    if total > limits.max_body_bytes:
                        raise PayloadTooLarge(f"request body is over the limit of {limits.max_body_bytes} bytes")
                    on_chunk(chunk)
                if not message.get("more_body", False):
                    return
                deadline.reschedule(loop.time() + limits.read_timeout)
    except TimeoutError:
        raise RequestTimeout(f"the client sent no body data for {limits.read_timeout:g} s") from None


async def _read_all(receive: Receive, limits: Limits) -> bytes:
    parts: list[bytes] = []
    await _receive_body(receive, limits, parts.append)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _add(text: dict[str, Any], key: str, value: Any) -> None:
    if key not in text:
        text[key] = value
    elif isinstance(text[key], _Multi):
        text[key].append(value)
    else:
        text[key] = _Multi([text[key], value])


class _Multi(list[Any]):
    """Marks a list built from a repeated key, so a later repeat appends instead of nesting."""


def _finish(text: dict[str, Any]) -> dict[str, Any]:
    for key, value in text.items():
        if isinstance(value, _Multi):
            text[key] = list(value)
    return text


def _decode(raw: bytes, what: str, charset: str = "utf-8") -> str:
    try:
        return raw.decode(charset)
    except (UnicodeDecodeError, LookupError):
        raise BadRequest(f"{what} is not valid {charset} text") from None


def _parse_urlencoded(body: bytes, limits: Limits, charset: str) -> dict[str, Any]:
    if body.count(b"&") >= limits.max_fields:
        raise PayloadTooLarge(f"more than {limits.max_fields} form fields")
    try:
        # decoded with the charset first: clients like `curl -d 'name=héllo'` send raw UTF-8 bytes,
        # not only %-escapes, and both must arrive as the same text
        pairs = parse_qsl(body.decode(charset), keep_blank_values=True, encoding=charset, errors="strict")
    except (UnicodeDecodeError, LookupError):
        raise BadRequest(f"form body is not valid {charset} text") from None
    except ValueError as exc:
        raise BadRequest(f"form body is malformed: {exc}") from None
    text: dict[str, Any] = {}
    for key, value in pairs:
        if len(value) > limits.max_field_bytes:
            raise PayloadTooLarge(f"form field {key[:50]!r} is over the limit of {limits.max_field_bytes} bytes")
        _add(text, key, value)
    return _finish(text)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_json(body: bytes, charset: str, limits: Limits) -> dict[str, Any]:
    # decoded strictly first: json.loads(bytes) would let lone surrogates through
    text = _decode(body, "JSON body", charset)
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise BadRequest("JSON body is nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"JSON body is malformed: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"JSON body must be an object, not {type(value).__name__}")
    if len(value) > limits.max_fields:
        raise PayloadTooLarge(f"more than {limits.max_fields} fields in the JSON object")
    for key, item in value.items():
        if isinstance(item, str) and len(item) > limits.max_field_bytes:
            raise PayloadTooLarge(f"field {key[:50]!r} is over the limit of {limits.max_field_bytes} bytes")
    if _SURROGATE_ESCAPE.search(text):
        # an escaped lone surrogate ("\ud800") parses, but is no text: it breaks every encoder later
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("JSON body contains a lone surrogate escape (\\ud800-\\udfff)") from None
    return value


class _MultipartReader:
    """Feeds a multipart body through python-multipart, spooling file parts to disk."""

    def __init__(self, boundary: bytes, limits: Limits) -> None:
        self.limits = limits
        self.text: dict[str, Any] = {}
        self.files: list[UploadedFile] = []
        self.fields = 0
        self.ended = False
        self.fed = False
        self.text_bytes = 0
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[str, bytes] = {}
        self._header_bytes = 0
        self._stream: IO[bytes] | None = None
        self._value: bytearray | None = None
        self.parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._part_begin,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_header_field": self._header_field_cb,
                "on_header_value": self._header_value_cb,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_end": self._end,
            },
            max_header_size=limits.max_part_header_bytes,
            max_header_count=32,
        )

    def _part_begin(self) -> None:
        self._headers = {}
        self._header_bytes = 0
        self._stream = None
        self._value = None

    def _header_field_cb(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]
        self._header_bytes += end - start

    def _header_value_cb(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        self._header_bytes += end - start
        if self._header_bytes > self.limits.max_part_header_bytes:
            raise PayloadTooLarge("a multipart part's headers are too large")

    def _header_end(self) -> None:
        name = self._header_field.decode("latin-1").lower()
        self._headers[name] = self._header_value
        self._header_field = b""
        self._header_value = b""

    def _headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get("content-disposition", b""))
        if disposition != b"form-data" or b"name" not in params:
            raise BadRequest("a multipart part lacks Content-Disposition: form-data; name=...")
        self._name = params[b"name"].decode("utf-8", errors="replace")
        filename = params.get(b"filename")
        if filename is not None:
            if len(self.files) >= self.limits.max_files:
                raise PayloadTooLarge(f"more than {self.limits.max_files} files")
            self._filename = filename.decode("utf-8", errors="replace")
            self._stream = tempfile.SpooledTemporaryFile(max_size=self.limits.spool_bytes, dir=self.limits.upload_dir)
            self.files.append(
                UploadedFile(
                    self._stream,
                    self._filename,
                    name=self._name,
                    content_type=self._headers.get("content-type", b"application/octet-stream").decode(
                        "utf-8", errors="replace"
                    ),
                    headers={k: v.decode("utf-8", errors="replace") for k, v in self._headers.items()},
                )
            )
        else:
            self.fields += 1
            if self.fields > self.limits.max_fields:
                raise PayloadTooLarge(f"more than {self.limits.max_fields} form fields")
            self._value = bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._stream is not None:
            self._stream.write(data[start:end])
        elif self._value is not None:
            self._value += data[start:end]
            self.text_bytes += end - start
            if self.text_bytes > self.limits.max_text_bytes:
                raise PayloadTooLarge(f"the text fields are over the limit of {self.limits.max_text_bytes} bytes")
            if len(self._value) > self.limits.max_field_bytes:
                raise PayloadTooLarge(
                    f"form field {self._name!r} is over the limit of {self.limits.max_field_bytes} bytes"
                )

    def _part_end(self) -> None:
        if self._stream is not None:
            upload = self.files[-1]
            self._stream.seek(0)
            # a browser's empty file input sends a nameless, empty part: it is no file
            if not upload.filename and upload.size == 0:
                self.files.pop().close()
        elif self._value is not None:
            value = _decode(bytes(self._value), f"form field {self._name!r}")
            if self._name == "json":
                merged = self._json_field(value)
                if merged is not None:
                    self.text.update(merged)
                    return
            _add(self.text, self._name, value)

    @staticmethod
    def _json_field(value: str) -> dict[str, Any] | None:
        # the iOS client sends its fields as one JSON object in a part named "json"
        try:
            decoded = json.loads(value, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            return None
        return decoded if isinstance(decoded, dict) else None

    def _end(self) -> None:
        self.ended = True

    def feed(self, chunk: bytes) -> None:
        """Parse the next chunk of the body."""
        self.fed = True
        try:
            self.parser.write(chunk)
        except (HTTPError, MultipartParseError):
            raise
        except Exception as exc:
            # whatever else the parser trips on is still a malformed body, not a server fault
            logger.warning("multipart parser failed on a client body", exc_info=exc)
            raise BadRequest("multipart body is malformed") from None

    def close(self) -> None:
        for upload in self.files:
            upload.close()


async def read_request(scope: Scope, receive: Receive, limits: Limits) -> tuple[dict[str, Any], list[UploadedFile]]:
    """Read the whole request body into the callback's `text` dict and `data` file list."""
    media, params, length = media_type_of(scope)
    if length is not None and length > limits.max_body_bytes:
        raise PayloadTooLarge(f"request body of {length} bytes is over the limit of {limits.max_body_bytes} bytes")
    if media == "multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary:
            raise BadRequest("multipart/form-data without a boundary parameter")
        try:
            reader = _MultipartReader(boundary, limits)
        except Exception as exc:  # python-multipart refuses some boundaries (longer than 256 bytes)
            raise BadRequest(f"multipart boundary is not usable: {exc}") from None
        try:
            await _receive_body(receive, limits, reader.feed)
            if reader.fed and not reader.ended:
                raise BadRequest("multipart body ended before its closing boundary")
        except MultipartParseError as exc:
            reader.close()
            if str(exc).startswith("Maximum header"):  # python-multipart's own size and count bounds
                raise PayloadTooLarge(f"a multipart part's headers are over the limit: {exc}") from None
            raise BadRequest(f"multipart body is malformed: {exc}") from None
        except BaseException:
            reader.close()
            raise
        return _finish(reader.text), reader.files
    # JSON and form bodies are text held in memory: their own, smaller bound
    text_limits = replace(limits, max_body_bytes=min(limits.max_body_bytes, limits.max_text_bytes))
    if length is not None and length > text_limits.max_body_bytes:
        raise PayloadTooLarge(
            f"a {media or 'text'} body of {length} bytes is over the limit of {text_limits.max_body_bytes} bytes"
        )
    body = await _read_all(receive, text_limits)
    if not body:
        return {}, []
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    if media == "application/x-www-form-urlencoded":
        return _parse_urlencoded(body, limits, charset), []
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return _parse_json(body, charset, limits), []
    shown = media or "none"
    raise UnsupportedMediaType(
        f"cannot read a body of Content-Type {shown!r}: send application/x-www-form-urlencoded, "
        "multipart/form-data or application/json"
    )
