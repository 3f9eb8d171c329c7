"""The one place where Python values become JSON: what every callback returns, streamed items,
job results and error bodies.

orjson writes dicts, lists, str, numbers, bool, None, tuples, `datetime`/`date`/`time`, `UUID`,
`Enum`, dataclasses and numpy scalars and arrays itself (about 10x faster than `json.dumps` on a
small reply, see `python -m bench encoder`); `default_json` adds pydantic models, `Decimal`,
numpy dtypes orjson does not know, and torch tensors (only when the program imported torch:
it is never imported here).

NaN and infinity: JSON has no such numbers; they are written as `null` (as orjson, pydantic's
`dump_json` and JavaScript's `JSON.stringify` do), everywhere, typed callback or not.
"""

from __future__ import annotations

import dataclasses
import decimal
import enum
import json
import math
import sys
from typing import Any

import orjson

from .exceptions import CallbackError

__all__ = ["encode_json", "jsonable", "default_json"]

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def default_json(value: Any) -> Any:
    """What orjson cannot write itself, as something it can (or TypeError)."""
    if isinstance(value, decimal.Decimal):
        return str(value)  # as pydantic writes it: no digit lost to a float
    dump = getattr(value, "model_dump", None)
    if dump is not None and "pydantic" in sys.modules:
        return dump(mode="json")
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()  # a dtype orjson does not write (float128, complex, object arrays)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def jsonable(value: Any) -> Any:
    """`value` made of plain JSON types (NaN and infinity as None): for `json.dumps`, for the
    rare value orjson refuses (an integer over 64 bits)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(key) if not isinstance(key, str) else key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    return jsonable(orjson.loads(orjson.dumps(value, default=default_json, option=_OPTIONS)))


def encode_json(result: Any) -> bytes:
    """A value as the JSON body of a reply (compact UTF-8; NaN and infinity as null)."""
    try:
        return orjson.dumps(result, default=default_json, option=_OPTIONS)
    except TypeError as exc:
        try:  # an integer over 64 bits: json writes any integer
            return json.dumps(jsonable(result), ensure_ascii=False, separators=(",", ":")).encode()
        except (TypeError, ValueError, RecursionError):
            pass
        raise CallbackError(
            f"the callback returned a {type(result).__name__} that cannot be sent as JSON ({exc}); "
            "return a dict, list, str, number, bool, None, bytes or file_return(path)"
        ) from exc
