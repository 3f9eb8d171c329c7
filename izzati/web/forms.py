"""Text fields: repeated keys become lists, text is decoded strictly, and the urlencoded and JSON
bodies become the callback's `text` dict."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

from ..exceptions import BadRequest, PayloadTooLarge

if TYPE_CHECKING:
    from .inputs import Limits

__all__ = ["add_field", "finish_fields", "decode_text", "check_text", "no_constant", "parse_urlencoded", "parse_json"]


def add_field(text: dict[str, Any], key: str, value: Any) -> None:
    """Add a field to `text`: a key sent again turns its value into the list of its values."""
    if key not in text:
        text[key] = value
    elif isinstance(text[key], _Multi):
        text[key].append(value)
    else:
        text[key] = _Multi([text[key], value])


class _Multi(list[Any]):
    """Marks a list built from a repeated key, so a later repeat appends instead of nesting."""


def finish_fields(text: dict[str, Any]) -> dict[str, Any]:
    """Make the lists of repeated keys plain lists, as callbacks see them."""
    for key, value in text.items():
        if isinstance(value, _Multi):
            text[key] = list(value)
    return text


# charsets whose strict decoder never yields a lone surrogate: no second look needed (the hot path)
_SURROGATE_FREE = frozenset({"utf-8", "utf8", "ascii", "us-ascii", "latin-1", "iso-8859-1"})


def decode_text(raw: bytes, what: str, charset: str = "utf-8") -> str:
    """Decode `raw` strictly into valid Unicode, or answer 400 naming `what`."""
    try:
        text = raw.decode(charset)
        if charset.lower() not in _SURROGATE_FREE:
            # some decoders (utf-7, unicode_escape) yield lone surrogates: no text, and every
            # encoder after this would fail on them
            text.encode("utf-8")
    except Exception:  # the client chose the codec: whatever it raises (punycode: IndexError) is a bad body
        raise BadRequest(f"{what} is not valid {charset} text") from None
    return text


def check_text(value: Any, what: str) -> Any:
    """`value` (decoded JSON) if every string in it is valid Unicode, else 400 naming `what`."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{what} contains a lone surrogate escape (\\ud800-\\udfff)") from None
    return value


def parse_urlencoded(body: bytes, limits: Limits, charset: str) -> dict[str, Any]:
    """The fields of an `application/x-www-form-urlencoded` body."""
    if body.count(b"&") >= limits.max_fields:
        raise PayloadTooLarge(f"more than {limits.max_fields} form fields")
    try:
        # decoded with the charset first: clients like `curl -d 'name=héllo'` send raw UTF-8 bytes,
        # not only %-escapes, and both must arrive as the same text
        pairs = parse_qsl(
            decode_text(body, "form body", charset), keep_blank_values=True, encoding=charset, errors="strict"
        )
        if charset.lower() not in _SURROGATE_FREE:
            check_text(pairs, "form body")  # %-escapes are decoded with the client's charset too
    except BadRequest:
        raise
    except Exception as exc:  # UnicodeDecodeError, or whatever the client's codec raises
        raise BadRequest(f"form body is malformed: {exc}") from None
    text: dict[str, Any] = {}
    for key, value in pairs:
        if len(value) > limits.max_field_bytes:
            raise PayloadTooLarge(f"form field {key[:50]!r} is over the limit of {limits.max_field_bytes} bytes")
        add_field(text, key, value)
    return finish_fields(text)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def no_constant(name: str) -> Any:
    """Refuse NaN and Infinity: they are not JSON."""
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(
    parse_constant=no_constant
)  # made once: json.loads(..., parse_constant=) makes one per call
# orjson reads a large numeric body several times faster than json; where they would differ it is not used:
# an integer of 19 digits or more (orjson makes it a float) or anything orjson refuses (the stdlib decides).
# The run of 19 digits is found with bytes.translate (every digit to b"0", the rest to a space) and a
# substring search, both C loops: 41 us for a body of 4,096 numbers (30 KB), where re's [0-9]{19} took 450
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_NINETEEN_DIGITS = b"0" * 19


def _fast_loads(body: bytes) -> Any:
    """`body` decoded by orjson, or None when the stdlib must decide."""
    if _NINETEEN_DIGITS in body.translate(_DIGITS_AS_ZERO):
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:  # malformed, NaN, a lone surrogate, not UTF-8...: the stdlib's answer and words
        return None


def parse_json(body: bytes, charset: str, limits: Limits) -> dict[str, Any]:
    """The fields of a JSON body: one object."""
    value = _fast_loads(body) if charset.lower() in ("utf-8", "utf8") else None
    text = ""
    if value is None:
        # decoded strictly first: json.loads(bytes) would let lone surrogates through
        text = decode_text(body, "JSON body", charset)
        try:
            value = _DECODER.decode(text)
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
    if text and _SURROGATE_ESCAPE.search(text):
        # an escaped lone surrogate ("\ud800") parses, but is no text: it breaks every encoder later
        # (orjson refuses one itself)
        check_text(value, "JSON body")
    return value
