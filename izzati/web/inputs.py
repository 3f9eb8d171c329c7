"""Wire parsing: a request body in any of the clients' encodings becomes `text` and `data`."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from python_multipart.multipart import parse_options_header
from starlette.types import Receive, Scope

from .. import defaults
from ..exceptions import BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from ..files import UploadedFile
from .forms import finish_fields, parse_json, parse_urlencoded
from .multipart import MultipartReader

__all__ = ["Limits", "ClientDisconnected", "read_request", "media_type_of", "FORMS"]

FORMS = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
"""The media types whose fields are strings (coerced to a typed callback's types)."""

logger = logging.getLogger("izzati")


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may carry; every one has a safe default."""

    max_body_bytes: int = defaults.MAX_BODY_BYTES
    max_files: int = defaults.MAX_FILES
    max_fields: int = defaults.MAX_FIELDS
    max_field_bytes: int = defaults.MAX_FIELD_BYTES
    max_part_header_bytes: int = defaults.MAX_PART_HEADER_BYTES
    max_text_bytes: int = defaults.MAX_TEXT_BYTES
    max_header_bytes: int = defaults.MAX_HEADER_BYTES
    read_timeout: float = defaults.READ_TIMEOUT
    spool_bytes: int = defaults.SPOOL_BYTES
    upload_dir: str | None = field(default=None)

    @property
    def max_parts(self) -> int:
        """Most parts of a multipart body: its fields and files, counting the nameless empty file
        parts (a browser's empty file input) that are no file but still cost parsing."""
        return self.max_files + self.max_fields

    @functools.cached_property
    def for_text(self) -> Limits:
        """These limits for a body held in memory (JSON, a form): `max_text_bytes` bounds it too."""
        return replace(self, max_body_bytes=min(self.max_body_bytes, self.max_text_bytes))


# what browsers and HTTP libraries send, read without the general parser (which gives the same)
_MULTIPART = re.compile(rb"multipart/form-data; boundary=([!#$%&'*+.^_`|~0-9A-Za-z-]+)")


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
    if content_type == b"application/json":  # the hot path: nothing to parse
        return "application/json", {}, length
    simple = _MULTIPART.fullmatch(content_type)
    if simple is not None:
        return "multipart/form-data", {b"boundary": simple[1]}, length
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


async def read_request(scope: Scope, receive: Receive, limits: Limits) -> tuple[dict[str, Any], list[UploadedFile]]:
    """Read the whole request body into the callback's `text` dict and `data` file list."""
    media, params, length = media_type_of(scope)
    if length is not None and length > limits.max_body_bytes:
        raise PayloadTooLarge(f"request body of {length} bytes is over the limit of {limits.max_body_bytes} bytes")
    if media == "multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary:
            raise BadRequest("multipart/form-data without a boundary parameter")
        reader = MultipartReader(boundary, limits)
        try:
            await _receive_body(receive, limits, reader.feed)
            if reader.fed and not reader.ended:
                raise BadRequest("multipart body ended before its closing boundary")
        except BaseException:
            reader.close()
            raise
        return finish_fields(reader.text), reader.files
    # JSON and form bodies are text held in memory: their own, smaller bound
    text_limits = limits.for_text
    if length is not None and length > text_limits.max_body_bytes:
        raise PayloadTooLarge(
            f"a {media or 'text'} body of {length} bytes is over the limit of {text_limits.max_body_bytes} bytes"
        )
    body = await _read_all(receive, text_limits)
    if not body:
        return {}, []
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    if media == "application/x-www-form-urlencoded":
        return parse_urlencoded(body, limits, charset), []
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return parse_json(body, charset, limits), []
    shown = media or "none"
    raise UnsupportedMediaType(
        f"cannot read a body of Content-Type {shown!r}: send application/x-www-form-urlencoded, "
        "multipart/form-data or application/json"
    )
