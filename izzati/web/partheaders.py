"""A multipart part's headers: the header block read into a dict, its Content-Disposition into the
field's name and filename.

Read as python-multipart reads them (tests/test_multipart.py compares the two on hostile headers),
except where readers disagree and a proxy in front could read another field than izzati does: a
part with two Content-Disposition headers (python-multipart takes the last, others the first) and a
header value with a bare CR or LF (a line break to some readers) or a NUL are refused with a 400.
"""

from __future__ import annotations

import re

from python_multipart.multipart import parse_options_header

from ..exceptions import BadRequest, PayloadTooLarge

__all__ = ["MAX_PART_HEADERS", "read_headers", "read_disposition"]

MAX_PART_HEADERS = 32  # headers in one part: browsers send two or three

# the characters of an RFC 9110 token, which a header name is
_TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CONTROLS = re.compile(rb"[\r\n\0]")
# what browsers and HTTP libraries send; anything else (escapes, other case, more parameters)
# goes through python-multipart's parse_options_header, which this matches exactly
_SIMPLE_DISPOSITION = re.compile(rb'form-data; name="([^"\\]*)"(?:; filename="([^"\\]*)")?')


def read_headers(block: bytes) -> dict[str, bytes]:
    """The headers of a block of `name: value` lines split by CRLF, by lower-case name."""
    headers: dict[str, bytes] = {}
    if not block:
        return headers
    lines = block.split(b"\r\n")
    if len(lines) > MAX_PART_HEADERS:
        raise PayloadTooLarge(f"a multipart part has more than {MAX_PART_HEADERS} headers")
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name.translate(None, _TOKEN) or _CONTROLS.search(value):
            shown = line[:80].decode("latin-1")
            raise BadRequest(f"multipart body is malformed: a part's header line {shown!r}")
        key = name.decode("latin-1").lower()
        if key == "content-disposition" and key in headers:
            raise BadRequest("a multipart part has two Content-Disposition headers")
        headers[key] = value.strip(b" \t")
    return headers


def read_disposition(headers: dict[str, bytes]) -> tuple[bytes, bytes | None]:
    """The part's field name and filename (None for a text field), from its Content-Disposition."""
    disposition = headers.get("content-disposition", b"")
    simple = _SIMPLE_DISPOSITION.fullmatch(disposition)
    if simple is not None:  # the common shape, read without the general parser
        name, filename = simple.groups()
        return name, filename
    kind, params = parse_options_header(disposition)
    if kind != b"form-data" or b"name" not in params:
        raise BadRequest("a multipart part lacks Content-Disposition: form-data; name=...")
    return params[b"name"], params.get(b"filename")
