"""A typed callback's result: its return annotation validates what it returns (each item of a
stream, each result of a batch) and makes it JSON-ready; a mismatch is a 500 `invalid_result`."""

from __future__ import annotations

import collections.abc
import inspect
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any, Union, get_args, get_origin

from pydantic import TypeAdapter, ValidationError

from ..exceptions import InvalidResult

__all__ = ["Outputs", "output_type"]

_SYNC_STREAMS = (collections.abc.Iterator, collections.abc.Iterable, collections.abc.Generator)
_ASYNC_STREAMS = (collections.abc.AsyncIterator, collections.abc.AsyncIterable, collections.abc.AsyncGenerator)


def _untyped(annotation: Any) -> bool:
    """Whether a return annotation says nothing to check: none, Any, bytes or a response object."""
    if annotation is inspect.Signature.empty or annotation is Any or annotation is object:
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_untyped(each) for each in get_args(annotation) if each is not type(None))
    if isinstance(annotation, type):
        if issubclass(annotation, (bytes, bytearray, memoryview)):
            return True
        return any(base.__module__.split(".")[0] == "starlette" for base in annotation.__mro__)
    return False


def _passes(value: Any) -> bool:
    """A value sent as it is whatever the annotation: bytes, or a response (`file_return`)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return True
    return type(value).__module__.split(".")[0] in ("starlette",) or type(value).__name__ == "RawResponse"


class Outputs:
    """What a typed callback returns (or, for a stream, yields).

    Arguments:
        annotation: the type of the result, or of each streamed item.
        stream: the callback returns an iterator of items of that type.
    """

    def __init__(self, annotation: Any, *, stream: bool = False) -> None:
        self.annotation = annotation
        self.stream = stream
        self.adapter: TypeAdapter[Any] = TypeAdapter(annotation)
        self.name = getattr(annotation, "__name__", None) or repr(annotation)

    def convert(self, value: Any, where: str = "result") -> Any:
        """`value` validated and made of JSON types (raises `InvalidResult` naming the field)."""
        if _passes(value):
            return value
        try:
            checked = self.adapter.validate_python(value)
        except ValidationError as error:
            said = "; ".join(
                f"{'.'.join(str(part) for part in each['loc']) or where}: {each['msg']}"
                for each in error.errors(include_url=False)
            )
            raise InvalidResult(f"the callback's {where} does not match its return type {self.name}: {said}") from None
        # sent as validated: the one encoder (izzati.encoding) writes models (their model_dump),
        # dataclasses, datetimes and numpy as it does for every callback; no second copy here
        return checked

    def result(self, value: Any) -> Any:
        """A callback's return value made ready to send: one value, or a stream of checked items."""
        if not self.stream:
            return self.convert(value)
        if inspect.isasyncgen(value):
            return self._async_items(value)
        if inspect.isgenerator(value) or isinstance(value, Iterator):
            return self._items(value)
        return self.convert(value)

    def _items(self, items: Iterator[Any]) -> Iterator[Any]:
        try:
            for item in items:
                yield self.convert(item, "streamed item")
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # the client hung up: the callback's generator ends at its yield

    async def _async_items(self, items: Any) -> AsyncIterator[Any]:
        try:
            async for item in items:
                yield self.convert(item, "streamed item")
        finally:
            await items.aclose()

    def json_schema(self, ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
        """The JSON schema of the result (or of one streamed item), as sent."""
        return self.adapter.json_schema(mode="serialization", ref_template=ref_template)


def output_type(annotation: Any) -> Outputs | None:
    """The `Outputs` of a return annotation, or None when it says nothing to check."""
    if _untyped(annotation):
        return None
    origin = get_origin(annotation)
    if origin in _SYNC_STREAMS or origin in _ASYNC_STREAMS:
        args = get_args(annotation)
        item = args[0] if args else Any
        return None if _untyped(item) else Outputs(item, stream=True)
    return Outputs(annotation)
