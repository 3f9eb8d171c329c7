"""Multipart bodies: split at the boundary with `bytes.find` over whole chunks, file parts spooled
to disk as they arrive.

Not python-multipart's parser: it walks each part's headers byte by byte in Python and calls back
per fragment (36 µs for the bench's 100 KiB upload, 15 µs here: a chunk costs one `find`, a
part's headers one `find` and a split). What is accepted matches it (tests/test_multipart.py
compares the two on random bodies): preamble and epilogue ignored, spaces or tabs allowed after a
delimiter; a part's headers are read in partheaders.py.
"""

from __future__ import annotations

import io
import json
import logging
import re
import tempfile
from typing import IO, TYPE_CHECKING, Any

from ..exceptions import BadRequest, HTTPError, PayloadTooLarge
from ..files import UploadedFile
from .forms import add_field, check_text, decode_text, no_constant
from .partheaders import MAX_PART_HEADERS, read_disposition, read_headers

if TYPE_CHECKING:
    from .inputs import Limits

__all__ = ["MultipartReader", "MAX_BOUNDARY_BYTES", "MAX_PART_HEADERS"]

logger = logging.getLogger("izzati")

MAX_BOUNDARY_BYTES = 256  # RFC 2046 allows 70; python-multipart and izzati before it took 256
_BLANKS = re.compile(rb"[ \t]*")

# where the parser is: at the body's start, before the first delimiter, in a part's headers or
# data, after a delimiter's transport padding, or past the closing delimiter
_START, _PREAMBLE, _HEADERS, _DATA, _PADDING, _END = range(6)


class MultipartReader:
    """Parses a multipart body chunk by chunk into `text` fields and spooled `files`."""

    def __init__(self, boundary: bytes, limits: Limits) -> None:
        if len(boundary) > MAX_BOUNDARY_BYTES or b"\r" in boundary or b"\n" in boundary:
            raise BadRequest(f"multipart boundary is not usable: longer than {MAX_BOUNDARY_BYTES} bytes")
        self.limits = limits
        self.text: dict[str, Any] = {}
        self.files: list[UploadedFile] = []
        self.fields = self.parts = 0
        self.ended = False
        self.fed = False
        self.text_bytes = 0
        self._delimiter = b"\r\n--" + boundary
        self._state = _START
        self._pending = b""  # bytes that may start a delimiter or a header block, kept for the next chunk
        self._name = ""
        # the file part being read: its filename and headers, its size, its bytes in memory (up to
        # spool_bytes), then its file on disk
        self._file: tuple[bytes, dict[str, bytes]] | None = None
        self._size = 0
        self._pieces: list[bytes] = []
        self._disk: IO[bytes] | None = None
        self._value: bytearray | None = None  # the text field being read

    def feed(self, chunk: bytes) -> None:
        """Parse the next chunk of the body."""
        self.fed = True
        data = self._pending + chunk if self._pending else chunk
        self._pending = b""
        try:
            pos, size = 0, len(data)
            while pos < size:
                state = self._state
                if state == _DATA or state == _PREAMBLE:
                    pos = self._data(data, pos)
                elif state == _HEADERS:
                    pos = self._headers(data, pos)
                elif state == _PADDING:
                    pos = self._padding(data, pos)
                elif state == _START:
                    pos = self._start(data, pos)
                else:  # the epilogue after the closing delimiter: ignored
                    return
        except HTTPError:
            raise
        except Exception as exc:
            # whatever else trips is still a malformed body, not a server fault
            logger.warning("multipart parser failed on a client body", exc_info=exc)
            raise BadRequest("multipart body is malformed") from None

    def _start(self, data: bytes, pos: int) -> int:
        # the first delimiter may open the body without the line break the others have
        opening = self._delimiter[2:]
        if not opening.startswith(data[pos : pos + len(opening)]):
            self._state = _PREAMBLE
            return pos
        if len(data) - pos < len(opening) + 2:  # its end and what follows decide
            self._pending = data[pos:]
            return len(data)
        self._state = _PREAMBLE
        return self._delimited(data, pos, pos, pos + len(opening))

    def _data(self, data: bytes, pos: int) -> int:
        delimiter = self._delimiter
        size = len(data)
        found = data.find(delimiter, pos)
        if found < 0:
            # keep what may be the start of a delimiter split by the chunk's end; it can only begin
            # at the last CR (a boundary has none)
            end = data.rfind(b"\r", max(pos, size - len(delimiter) + 1))
            if end < 0 or not delimiter.startswith(data[end:]):
                end = size
            self._emit(data, pos, end)
            self._pending = data[end:]
            return size
        return self._delimited(data, pos, found, found + len(delimiter))

    def _delimited(self, data: bytes, pos: int, found: int, after: int) -> int:
        # data[pos:found] is the part's, data[found:after] a boundary line's start
        size = len(data)
        if size - after < 2:  # what follows decides whether it is a delimiter
            self._emit(data, pos, found)
            self._pending = data[found:]
            return size
        follows = data[after : after + 2]
        if follows == b"\r\n":
            self._emit(data, pos, found)
            self._part_end()
            self._state = _HEADERS
            return after + 2
        if follows == b"--":
            self._emit(data, pos, found)
            self._part_end()
            self._state = _END
            self.ended = True
            return size
        if follows[0] in b" \t":
            self._emit(data, pos, found)
            self._part_end()
            self._state = _PADDING
            return after
        # the boundary's text inside the data, not a delimiter line: it is data
        self._emit(data, pos, found + 1)
        return found + 1

    def _padding(self, data: bytes, pos: int) -> int:
        pos = _BLANKS.match(data, pos).end()  # type: ignore[union-attr]  # [ \t]* always matches
        if pos == len(data):
            return pos
        if data.startswith(b"\r\n", pos):
            self._state = _HEADERS
            return pos + 2
        if data[pos:] == b"\r":
            self._pending = b"\r"
            return len(data)
        raise BadRequest("multipart body is malformed: no line break after a boundary's padding")

    def _headers(self, data: bytes, pos: int) -> int:
        limit = self.limits.max_part_header_bytes
        if data.startswith(b"\r\n", pos):
            end = pos  # a part without headers
        else:
            end = data.find(b"\r\n\r\n", pos, pos + limit + 4)
            if end < 0:
                if len(data) - pos > limit + 3:
                    raise PayloadTooLarge(f"a multipart part's headers are over the limit of {limit} bytes")
                self._pending = data[pos:]
                return len(data)
        self._part_begin(read_headers(data[pos:end]))
        self._state = _DATA
        return end + (2 if end == pos else 4)

    def _part_begin(self, headers: dict[str, bytes]) -> None:
        self.parts += 1  # every part, also a nameless empty file part that is dropped (as max_form_parts)
        if self.parts > self.limits.max_parts:
            raise PayloadTooLarge(f"more than {self.limits.max_parts} multipart parts")
        name_raw, filename = read_disposition(headers)
        self._name = name_raw.decode("utf-8", errors="replace")
        if filename is None:
            self.fields += 1
            if self.fields > self.limits.max_fields:
                raise PayloadTooLarge(f"more than {self.limits.max_fields} form fields")
            self._value = bytearray()
            return
        if len(self.files) >= self.limits.max_files:
            raise PayloadTooLarge(f"more than {self.limits.max_files} files")
        self._file = (filename, headers)
        self._size = 0

    def _emit(self, data: bytes, start: int, end: int) -> None:
        if end <= start:
            return
        if self._file is not None:
            self._size += end - start
            if self._disk is None and self._size <= self.limits.spool_bytes:
                # kept as they come: one copy, and a part read whole is then read without another
                self._pieces.append(data[start:end] if start or end < len(data) else data)
                return
            # a view, not a slice: the file copies the bytes once
            self._spill().write(memoryview(data)[start:end])
        elif self._value is not None:
            self._value += memoryview(data)[start:end]
            self.text_bytes += end - start
            if self.text_bytes > self.limits.max_text_bytes:
                raise PayloadTooLarge(f"the text fields are over the limit of {self.limits.max_text_bytes} bytes")
            if len(self._value) > self.limits.max_field_bytes:
                raise PayloadTooLarge(
                    f"form field {self._name!r} is over the limit of {self.limits.max_field_bytes} bytes"
                )
        # else: the preamble before the first delimiter, ignored

    def _spill(self) -> IO[bytes]:
        # past spool_bytes, a part moves to a nameless file in upload_dir (O_TMPFILE: gone when
        # closed, even if the process dies): memory stays constant for any upload size
        if self._disk is None:
            self._disk = tempfile.TemporaryFile(dir=self.limits.upload_dir)
            self._disk.writelines(self._pieces)
            self._pieces = []
        return self._disk

    def _part_end(self) -> None:
        meta, value = self._file, self._value
        self._file = self._value = None
        if meta is not None:
            filename, headers = meta
            stream: IO[bytes]
            if self._disk is not None:
                stream, self._disk = self._disk, None
                stream.seek(0)
            else:
                pieces, self._pieces = self._pieces, []
                # BytesIO over one bytes object shares it, and a read of all of it returns it, uncopied
                stream = io.BytesIO(pieces[0] if len(pieces) == 1 else b"".join(pieces))
            # a browser's empty file input sends a nameless, empty part: it is no file
            if not filename and self._size == 0:
                stream.close()
                return
            content_type = headers.get("content-type", b"application/octet-stream")
            self.files.append(
                UploadedFile(
                    stream,
                    filename.decode("utf-8", errors="replace"),
                    name=self._name,
                    content_type=content_type.decode("utf-8", errors="replace"),
                    headers={k: v.decode("utf-8", errors="replace") for k, v in headers.items()},
                )
            )
        elif value is not None:
            text = decode_text(bytes(value), f"form field {self._name!r}")
            if self._name == "json":
                merged = self._json_field(text)
                if merged is not None:
                    self.text.update(merged)
                    return
            add_field(self.text, self._name, text)

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

    def close(self) -> None:
        """Close (and so delete) every spooled file."""
        for upload in self.files:
            upload.close()
        if self._disk is not None:  # a file part cut off by an error
            self._disk.close()
