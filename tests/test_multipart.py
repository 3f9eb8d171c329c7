"""The multipart parser: the same parts as python-multipart's parser, whatever the chunking."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from izzati import Limits
from izzati.exceptions import BadRequest, HTTPError, PayloadTooLarge
from izzati.web.inputs import media_type_of
from izzati.web.multipart import MAX_PART_HEADERS, MultipartReader

BOUNDARY = b"bnd"
REPEATED = "two content-dispositions"  # marks a part that python-multipart reads by its last one
Parts = list[tuple[dict[str, bytes], bytes]]


def reference(body: bytes, boundary: bytes = BOUNDARY) -> Parts | None:
    """The parts python-multipart finds (headers, content), or None if it refuses the body or it never ends."""
    parts: Parts = []
    header: list[bytes] = [b"", b""]
    state: dict[str, Any] = {"ended": False}
    seen: list[str] = []  # the header names of the current part, to mark a repeated Content-Disposition

    def field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def header_end() -> None:
        name = header[0].decode("latin-1").lower()
        if name == "content-disposition" and name in seen:
            parts[-1][0][REPEATED] = b""
        seen.append(name)
        parts[-1][0][name] = header[1].strip(b" \t")
        header[:] = [b"", b""]

    def part_begin() -> None:
        parts.append(({}, b""))
        seen.clear()

    def data(data: bytes, start: int, end: int) -> None:
        headers, content = parts[-1]
        parts[-1] = (headers, content + data[start:end])

    callbacks: Any = {
        "on_part_begin": part_begin,
        "on_header_field": field,
        "on_header_value": value,
        "on_header_end": header_end,
        "on_part_data": data,
        "on_end": lambda: state.update(ended=True),
    }
    try:
        MultipartParser(boundary, callbacks, max_header_count=MAX_PART_HEADERS).write(body)
    except MultipartParseError:
        return None
    return parts if state["ended"] else None


def ours(body: bytes, cuts: list[int], limits: Limits | None = None) -> MultipartReader:
    """izzati's reader fed `body` in pieces cut at `cuts`."""
    reader = MultipartReader(BOUNDARY, limits or Limits())
    edges = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
    for start, end in zip(edges, edges[1:], strict=False):
        reader.feed(body[start:end])
    return reader


def as_parts(reader: MultipartReader) -> tuple[dict[str, Any], list[tuple[str, str, bytes]]]:
    files = [(f.name, f.filename, f.read()) for f in reader.files]
    reader.close()
    return reader.text, files


class Refused(Exception):
    """izzati answers 400 to these parts (no form-data name, a text field that is not UTF-8, two
    Content-Dispositions, a header value with a bare LF or a NUL, which python-multipart reads)."""


def expected(parts: Parts) -> tuple[dict[str, Any], list[tuple[str, str, bytes]]]:
    """What izzati makes of python-multipart's parts (text fields by name, files in order)."""
    text: dict[str, Any] = {}
    files = []
    for headers, content in parts:
        if REPEATED in headers:  # which one names the field? parsers (and proxies) differ: refused
            raise Refused
        if any(b"\n" in value or b"\0" in value for value in headers.values()):
            raise Refused  # a bare LF ends a line for some readers; NUL is no header text (RFC 9110)
        kind, params = parse_options_header(headers.get("content-disposition", b""))
        if kind != b"form-data" or b"name" not in params:
            raise Refused
        name = params[b"name"].decode("utf-8", errors="replace")
        if b"filename" in params:
            files.append((name, params[b"filename"].decode("utf-8", errors="replace"), content))
            continue
        try:
            value = content.decode()
        except UnicodeDecodeError:
            raise Refused from None
        if name in text:
            text[name] = (text[name] if isinstance(text[name], list) else [text[name]]) + [value]
        else:
            text[name] = value
    return text, files


# bytes that look like parts of a delimiter, inside content, padding and preamble
TRICKY = st.sampled_from(
    [b"\r", b"\n", b"\r\n", b"-", b"--", b"bnd", b"\r\n--bn", b"\r\n--bnd-x", b"\r\n--bndx", b"--bnd\r\n", b" "]
)
CONTENT = st.lists(st.one_of(TRICKY, st.binary(max_size=30)), max_size=12).map(b"".join)
NAME = st.text("abcxyz_", min_size=1, max_size=6)
PART = st.tuples(NAME, st.one_of(st.none(), NAME), CONTENT, st.sampled_from([b"", b" ", b"\t ", b"  "]))


def build(parts: list[tuple[str, str | None, bytes, bytes]], preamble: bytes, epilogue: bytes) -> bytes:
    out = preamble
    for i, (name, filename, content, padding) in enumerate(parts):
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        # transport padding after a delimiter (RFC 2046), except the first, where python-multipart refuses it
        out += b"--bnd" + (padding if i else b"") + f"\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += content + b"\r\n"
    return out + b"--bnd--" + epilogue


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(PART, max_size=6),
    preamble=st.sampled_from([b"", b"\r\n", b"\r\n\r\n"]),
    epilogue=st.sampled_from([b"", b"\r\n", b"\r\nthe end\r\n--bnd\r\n"]),
    cuts=st.lists(st.integers(min_value=0), max_size=8),
)
def test_same_parts_as_python_multipart_in_any_chunking(
    parts: list[tuple[str, str | None, bytes, bytes]], preamble: bytes, epilogue: bytes, cuts: list[int]
) -> None:
    compare(build(parts, preamble, epilogue), cuts)


def compare(body: bytes, cuts: list[int]) -> None:
    """izzati reads `body` as python-multipart does, or both refuse it (izzati with a 400)."""
    found = reference(body)
    try:
        want = None if found is None else expected(found)
    except Refused:
        want = None
    if want is None:
        with pytest.raises(HTTPError) as refused:
            reader = ours(body, cuts)
            if not reader.ended:
                raise BadRequest("never ended")  # what inputs.py answers to a body that stops short
        assert refused.value.status_code == 400
        return
    reader = ours(body, cuts)
    assert reader.ended
    assert as_parts(reader) == want


# header lines a hostile client sends: repeats, obs-folding, bare LF, odd case, NUL, very long
HOSTILE = st.sampled_from(
    [
        b'Content-Disposition: form-data; name="dup"',
        b'content-disposition: form-data; name="dup"; filename="d.bin"',
        b"CONTENT-DISPOSITION: attachment",
        b'content-disposition:form-data; name="tight"',
        b' name="folded"',
        b"\tfolded: x",
        b"X-Bare: a\nX-Other: b",
        b"X-Bare-End: a\n",
        b"X-Nul: a\x00b",
        b"X-\x00: v",
        b"X-Long: " + b"v" * 2500,
        b"X-" + b"n" * 2500 + b": v",
        b"Content-Type: text/plain",
        b"CONTENT-TYPE: image/png",
        b"X-Empty:",
        b"X-Colons:: x",
        b"X-Space : v",
        b":no-name",
        b"X-Trailing: v \t",
        b"X-Latin: \xe9\xff",
    ]
)
DISPOSITION = st.sampled_from(
    [b"Content-Disposition: ", b"content-disposition: ", b"CONTENT-DISPOSITION:", b"cOnTeNt-DiSpOsItIoN:\t"]
)
HOSTILE_PART = st.tuples(NAME, st.one_of(st.none(), NAME), CONTENT, DISPOSITION, st.lists(HOSTILE, max_size=3))


def build_hostile(parts: list[tuple[str, str | None, bytes, bytes, list[bytes]]], at: int) -> bytes:
    out = b""
    for name, filename, content, header, extra in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        lines = list(extra)
        lines.insert(at % (len(lines) + 1), header + disposition.encode())
        out += b"--bnd\r\n" + b"\r\n".join(lines) + b"\r\n\r\n" + content + b"\r\n"
    return out + b"--bnd--"


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(HOSTILE_PART, min_size=1, max_size=3),
    at=st.integers(min_value=0, max_value=3),
    cuts=st.lists(st.integers(min_value=0), max_size=8),
)
def test_hostile_part_headers_are_read_as_python_multipart_reads_them_or_refused(
    parts: list[tuple[str, str | None, bytes, bytes, list[bytes]]], at: int, cuts: list[int]
) -> None:
    compare(build_hostile(parts, at), cuts)


@settings(max_examples=300, deadline=None)
@given(
    body=st.lists(st.one_of(TRICKY, st.binary(max_size=20)), max_size=30).map(b"".join),
    cuts=st.lists(st.integers(min_value=0), max_size=6),
)
def test_any_bytes_end_in_a_result_or_a_client_error(body: bytes, cuts: list[int]) -> None:
    try:
        whole = as_parts(ours(body, []))
    except HTTPError as exc:
        assert exc.status_code in (400, 413)
        with pytest.raises(HTTPError):
            ours(body, cuts)
        return
    assert as_parts(ours(body, cuts)) == whole  # the chunking changes nothing


def test_one_byte_at_a_time() -> None:
    content = os.urandom(3000) + b"\r\n--bn" + b"\r\n--bnd-x" + b"\r"
    body = build([("a", None, b"v", b""), ("f", "x.bin", content, b" ")], b"preamble\r\n", b"\r\n")
    reader = ours(body, list(range(len(body))))
    assert reader.ended
    assert as_parts(reader) == ({"a": "v"}, [("f", "x.bin", content)])


def test_a_part_that_spans_the_spool_limit_moves_to_disk_whole() -> None:
    content = os.urandom(5000)
    reader = ours(build([("f", "x.bin", content, b"")], b"", b""), [100, 1100, 1101, 4000], Limits(spool_bytes=1024))
    assert reader.files[0].stream.fileno() >= 0
    assert as_parts(reader) == ({}, [("f", "x.bin", content)])


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            b'--bnd\r\nContent-Disposition: form-data; name="a"\r\nX-Y: ' + b"y" * 9000 + b"\r\n\r\nv\r\n--bnd--",
            PayloadTooLarge,
        ),
        (
            b"--bnd\r\n" + b"X-A: 1\r\n" * 40 + b'Content-Disposition: form-data; name="a"\r\n\r\nv\r\n--bnd--',
            PayloadTooLarge,
        ),
        (b'--bnd\r\nContent-Disposition: form-data; name="a"\r\nno colon\r\n\r\nv\r\n--bnd--', BadRequest),
        (b'--bnd\r\nContent-Disposition: form-data; name="a"\r\nBad Name: x\r\n\r\nv\r\n--bnd--', BadRequest),
        (b'--bnd\r\nContent-Disposition: form-data; name="a"\r\nX: a\rb\r\n\r\nv\r\n--bnd--', BadRequest),
        (b'--bnd\r\nContent-Disposition: form-data; name="a"\r\nX: a\nb\r\n\r\nv\r\n--bnd--', BadRequest),
        (b'--bnd\r\nContent-Disposition: form-data; name="a"\r\nX: a\0b\r\n\r\nv\r\n--bnd--', BadRequest),
        (
            b'--bnd\r\nContent-Disposition: form-data; name="a"\r\ncontent-disposition: form-data; name="b"'
            b"\r\n\r\nv\r\n--bnd--",
            BadRequest,
        ),
        (b'--bnd  x\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--bnd--', BadRequest),
        (b"--bnd\r\nContent-Type: text/plain\r\n\r\nv\r\n--bnd--", BadRequest),
        (b"--bnd\r\n\r\nv\r\n--bnd--", BadRequest),
    ],
    ids=[
        "header-block-too-big",
        "too-many-headers",
        "no-colon",
        "name-not-a-token",
        "lone-cr",
        "bare-lf",
        "nul",
        "two-dispositions",
        "bad-padding",
        "no-disposition",
        "no-headers",
    ],
)
def test_bad_part_headers(body: bytes, error: type[HTTPError]) -> None:
    for cuts in ([], list(range(0, len(body), 7))):
        with pytest.raises(error):
            ours(body, cuts)


def test_boundaries_longer_than_256_bytes_are_refused() -> None:
    MultipartReader(b"b" * 256, Limits())
    with pytest.raises(BadRequest):
        MultipartReader(b"b" * 257, Limits())


def test_general_disposition_syntax_is_still_read() -> None:
    # escapes, other case, extra parameters, an RFC 2231 name (ignored, as form-data forbids it)
    body = (
        b'--bnd\r\ncontent-disposition: Form-Data; name="a\\"b"; filename*=UTF-8\'\'x; filename="c;d.txt"\r\n\r\n1\r\n'
        b"--bnd\r\nContent-Disposition: form-data;name=plain\r\n\r\n2\r\n--bnd--"
    )
    assert as_parts(ours(body, [])) == ({"plain": "2"}, [('a"b', "c;d.txt", b"1")])


# names with the characters that quoting, escaping and parameter splitting are about
QUOTABLE = st.lists(
    st.one_of(
        st.sampled_from(["\\", '"', ";", "=", " ", "\\\\", '\\"', "*", ":\\"]),
        st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=4),
    ),
    max_size=5,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(name=QUOTABLE, filename=st.one_of(st.none(), QUOTABLE))
def test_names_are_read_as_python_multipart_reads_them(name: str, filename: str | None) -> None:
    disposition = f'form-data; name="{name}"' + ("" if filename is None else f'; filename="{filename}"')
    body = b"--bnd\r\nContent-Disposition: " + disposition.encode("latin-1") + b"\r\n\r\nv\r\n--bnd--"
    found = reference(body)
    assert found is not None
    try:
        want = expected(found)
    except Refused:
        with pytest.raises(BadRequest):
            ours(body, [])
        return
    got = ours(body, [])
    assert as_parts(got) == want


@settings(max_examples=300, deadline=None)
@given(boundary=st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=80))
def test_content_types_are_read_as_python_multipart_reads_them(boundary: str) -> None:
    value = b"multipart/form-data; boundary=" + boundary.encode()
    media, params = parse_options_header(value)
    assert media_type_of({"headers": [(b"content-type", value)]})[:2] == (media.decode().lower(), params)
