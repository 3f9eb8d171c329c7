"""Typed callbacks: the signature is the API (tests/test_typed_*.py)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

import izzati
from izzati.exceptions import BadRequest


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Label(BaseModel):
    label: str
    score: float


def predict(
    n: int,
    name: str = "x",
    tags: list[str] = [],  # noqa: B006 - a default, never mutated
    color: Color = Color.RED,
    mode: Literal["fast", "exact"] = "fast",
    flag: bool = False,
    ratio: Annotated[float, Field(ge=0, le=1, description="how much")] = 0.5,
    limit: int | None = None,
) -> dict[str, Any]:
    """Every kind of field, echoed back with its Python type."""
    got = {"n": n, "name": name, "tags": tags, "color": color, "mode": mode, "flag": flag, "ratio": ratio}
    got["limit"] = limit
    return {
        key: [value.value if isinstance(value, enum.Enum) else value, type(value).__name__]
        for key, value in got.items()
    }


def classify(text: str, top: int = 1) -> Label:
    """One text field named `text` (not the classic pair), a typed result."""
    return Label(label=text.upper()[:top] or "none", score=0.5)


def wrong_result(n: int) -> Label:
    """Returns what does not match its annotation."""
    return {"label": "x", "score": "not a number" if n else 1.0}  # type: ignore[return-value]


def image_size(
    image: Annotated[izzati.File, izzati.Accept("image/*", ".png", max_bytes=100)],
    extra: list[izzati.File] = [],  # noqa: B006
    note: izzati.File | None = None,
) -> dict[str, Any]:
    """Files: one accepted by type and size, a list, an optional one."""
    return {
        "image": [image.filename, len(image.read())],
        "extra": [each.filename for each in extra],
        "note": note.read().decode() if note is not None else None,
    }


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: str
    qty: int = Field(ge=1)


def order(body: Order) -> Order:
    """One pydantic model parameter: the whole body (extra fields refused)."""
    return Order(item=body.item.upper(), qty=body.qty * 2)


def ml(n: int) -> dict[str, Any]:
    """What models return: numpy, datetime, UUID, Decimal, Enum, dataclasses, pydantic models."""

    @dataclasses.dataclass
    class Point:
        x: float
        y: float

    return {
        "int64": np.int64(n),
        "float32": np.float32(0.5),
        "array": np.arange(n),
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "day": datetime.date(2026, 1, 2),
        "id": uuid.UUID(int=n),
        "price": decimal.Decimal("1.10"),
        "color": Color.BLUE,
        "point": Point(1.0, 2.0),
        "label": Label(label="a", score=1),
        "nan": float("nan"),
    }


def ml_classic(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
    """A classic callback returning numpy values (a 500 before izzati 2.1)."""
    return {"n": np.int64(len(text)), "scores": np.array([0.25, 0.75])}


class Token(TypedDict):
    index: int
    token: str


def tokens(text: str, count: int = 3) -> Iterator[Token]:
    """A typed stream: each item is checked against `Token`."""
    for index in range(count):
        yield {"index": index, "token": f"{text}{index}"}
    if text == "bad":
        yield {"index": "no", "token": 1}  # type: ignore[typeddict-item]


async def atokens(text: str, count: int = 2) -> AsyncIterator[Token]:
    """An async typed stream."""
    for index in range(count):
        yield {"index": index, "token": text}


def with_queue(q: Any, n: int) -> dict[str, int]:
    """A typed callback that also takes the queue."""
    q.put({"n": n})
    return {"queued": n}


class Item(BaseModel):
    n: int


class Doubled(BaseModel):
    doubled: int


@izzati.batched(max_size=8, max_wait_ms=100)
def double_batch(batch: list[Item]) -> list[Doubled | BadRequest]:
    """A typed batch callback: each request validated alone; item 13 returns a wrong result, item 7
    its own error."""
    results: list[Any] = []
    for item in batch:
        if item.n == 7:
            results.append(BadRequest("seven is not doubled here"))
        else:
            results.append(Doubled(doubled=item.n * 2) if item.n != 13 else {"doubled": "x"})
    return results


def sensor(temperature: float, humidity: int) -> dict[str, Any]:
    """The ESP8266 shape: two form fields, typed."""
    return {
        "temperature": temperature,
        "humidity": humidity,
        "types": [type(temperature).__name__, type(humidity).__name__],
    }


def uploaded(file: izzati.File, name: str = "", user: str = "", count: int = 0) -> dict[str, Any]:
    """The original clients' shape: a file part named `file` and text fields."""
    return {"name": name, "user": user, "count": count, "file": [file.filename, len(file.read())]}


def uploads(name: str, file: list[izzati.File]) -> dict[str, Any]:
    """Several files under one name (React Native)."""
    return {"name": name, "files": [each.filename for each in file]}
