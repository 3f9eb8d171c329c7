"""Multipart bodies: python-multipart's parser, with file parts spooled to disk as they arrive."""

from __future__ import annotations

import json
import logging
import tempfile
from typing import IO, TYPE_CHECKING, Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from ..exceptions import BadRequest, HTTPError, PayloadTooLarge
from ..files import UploadedFile
from .forms import add_field, check_text, decode_text, no_constant

if TYPE_CHECKING:
    from .inputs import Limits

__all__ = ["MultipartReader"]

logger = logging.getLogger("izzati")
# python-multipart logs a warning for every malformed byte it meets; a hostile client could use
# that to flood the logs, and izzati already answers such bodies with one 400.
logging.getLogger("python_multipart.multipart").setLevel(logging.ERROR)


class MultipartReader:
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
            value = decode_text(bytes(self._value), f"form field {self._name!r}")
            if self._name == "json":
                merged = self._json_field(value)
                if merged is not None:
                    self.text.update(merged)
                    return
            add_field(self.text, self._name, value)

    @staticmethod
    def _json_field(value: str) -> dict[str, Any] | None:
        # the iOS client sends its fields as one JSON object in a part named "json"
        try:
            decoded = json.loads(value, parse_constant=no_constant)
        except (ValueError, RecursionError):
            return None
        if not isinstance(decoded, dict):
            return None
        return check_text(decoded, "multipart field 'json'")  # type: ignore[no-any-return]

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
