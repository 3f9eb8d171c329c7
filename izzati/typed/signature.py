"""Which callbacks are typed, and their one input model and output type, read from the signature
once, when the `Backend` (or a worker's invoker) is made.

A callback is typed when its parameters, after the queue (`q`) and those `Backend(kwargs=...)`
fills, are all annotated and are not the classic `(text, data)` pair (nor a `text: dict` first,
the classic shape with `data` missing). A batch callback is typed
when its one parameter is `list[Item]` of a pydantic model, a dataclass or a TypedDict.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable, Collection, Mapping
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.errors import PydanticUserError

from ..exceptions import ConfigError
from .inputs import Inputs, Validated
from .outputs import Outputs, output_type

__all__ = ["Typed", "read_signature", "CallbackSchema", "callback_schema"]

_INPUT_KINDS = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.KEYWORD_ONLY,
)


def _is_record(annotation: Any) -> bool:
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    if not isinstance(annotation, type):
        return False
    return issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation) or typing.is_typeddict(annotation)


def _is_model(annotation: Any) -> bool:
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _classic_text(parameters: list[inspect.Parameter]) -> bool:
    """A first parameter `text: dict`: the classic shape (with `data` missing), not a field."""
    if not parameters or parameters[0].name != "text":
        return False
    annotation = parameters[0].annotation
    return annotation in (dict, Mapping) or get_origin(annotation) in (dict, Mapping)


def _without_exceptions(annotation: Any) -> Any:
    """A batch item's result type without the exception types it may also be."""
    if get_origin(annotation) not in (typing.Union, types.UnionType):
        return annotation
    kept = [each for each in get_args(annotation) if not (isinstance(each, type) and issubclass(each, BaseException))]
    if not kept:
        return inspect.Signature.empty
    return kept[0] if len(kept) == 1 else typing.Union.__getitem__(tuple(kept))


def _model_name(callback: Callable[..., Any]) -> str:
    target = callback if hasattr(callback, "__qualname__") else type(callback)
    words = re.split(r"[^0-9A-Za-z]+", getattr(target, "__qualname__", "callback"))
    return "".join(word[:1].upper() + word[1:] for word in words if word and word != "__call__") or "Callback"


@dataclasses.dataclass(frozen=True)
class Typed:
    """A typed callback's inputs (one model) and output type (None: its results are sent as they are)."""

    inputs: Inputs
    outputs: Outputs | None
    batch: bool = False

    def arguments(self, inputs: tuple[Any, ...], form: bool = False) -> dict[str, Any]:
        """The callback's keyword arguments for `inputs`: one `Validated` (a request), `text, data`
        (a job's stored inputs) or, for a batch, a list of either."""
        if self.batch:
            items = [self._value(item if isinstance(item, tuple) else (item,)) for item in inputs[0]]
            name = self.inputs.body_name or "batch"
            return {name: items}
        return self.inputs.arguments(self._value(inputs))

    def _value(self, inputs: tuple[Any, ...]) -> Any:
        first = inputs[0]
        if isinstance(first, Validated):
            return first.value
        return self.inputs.validate(self.inputs.prepare(dict(first or {}), list(inputs[1] or []), form=False))

    def result(self, value: Any) -> Any:
        """The callback's return value checked against its annotation (per item for a batch)."""
        if self.outputs is None:
            return value
        if not self.batch or not isinstance(value, (list, tuple)):
            return self.outputs.result(value)
        converted: list[Any] = []
        for each in value:
            try:
                converted.append(each if isinstance(each, BaseException) else self.outputs.result(each))
            except Exception as exc:  # this item's error only
                converted.append(exc)
        return converted


def read_signature(
    callback: Callable[..., Any], *, skip_first: bool = False, bound: Collection[str] = (), batch: bool = False
) -> Typed | None:
    """The `Typed` of `callback`, or None for a classic `(text, data)` callback.

    Arguments:
        skip_first: the first parameter takes the queue (`Backend(background=True)`).
        bound: parameters filled by name by izzati (`q`) or by `Backend(kwargs=...)`.
        batch: the callback takes batches.
    """
    try:
        raw = inspect.signature(callback)
    except (TypeError, ValueError):
        return None
    # the names first, the annotations unread: a classic callback's may name what is not importable
    if _inputs(raw, skip_first, bound) is None:
        return None
    try:
        signature = inspect.signature(callback, eval_str=True)
    except Exception as exc:  # an annotation that names something undefined
        if [param.name for param in _inputs(raw, skip_first, bound) or []][:1] == ["text"]:
            return None  # `text: SomeLocalType`: the classic shape
        raise ConfigError(f"cannot read the annotations of the callback {callback!r}: {exc}") from exc
    parameters = _inputs(signature, skip_first, bound)
    if parameters is None or _classic_text(parameters):
        return None
    try:
        return _build(callback, signature, parameters, batch)
    except PydanticUserError as exc:  # e.g. typing.TypedDict on Python 3.11, a type pydantic cannot check
        raise ConfigError(f"the signature of the callback {callback!r} cannot be validated: {exc.message}") from exc


def _inputs(signature: inspect.Signature, skip_first: bool, bound: Collection[str]) -> list[inspect.Parameter] | None:
    """The parameters that are inputs, or None when the callback is classic: `(text, data)` or
    an unannotated parameter."""
    parameters = [param for param in signature.parameters.values() if param.kind in _INPUT_KINDS]
    if skip_first and parameters:
        parameters = parameters[1:]
    parameters = [param for param in parameters if param.name not in bound]
    if [param.name for param in parameters[:2]] == ["text", "data"]:
        return None
    if any(param.annotation is param.empty for param in parameters):
        return None
    return parameters


def _build(
    callback: Callable[..., Any], signature: inspect.Signature, parameters: list[inspect.Parameter], batch: bool
) -> Typed | None:
    outputs = None if batch else output_type(signature.return_annotation)  # a batch: per item, below
    if not parameters and outputs is None:
        return None
    name = _model_name(callback)
    if batch:
        if len(parameters) != 1 or get_origin(parameters[0].annotation) is not list:
            return None
        item = get_args(parameters[0].annotation)[0]
        if not _is_record(item):
            return None
        returned = signature.return_annotation
        each = get_args(returned)[0] if get_origin(returned) is list and get_args(returned) else returned
        each = _without_exceptions(each)  # `Out | Exception`: an item's own error is sent as an error
        return Typed(Inputs(name, record=item, body_name=parameters[0].name), output_type(each), batch=True)
    if len(parameters) == 1 and _is_model(parameters[0].annotation):
        return Typed(Inputs(name, record=parameters[0].annotation, body_name=parameters[0].name), outputs)
    return Typed(Inputs(f"{name}Inputs", parameters), outputs)


@dataclasses.dataclass(frozen=True)
class CallbackSchema:
    """The JSON schemas of a typed callback: its inputs, and its result (or each streamed item)."""

    inputs: dict[str, Any]
    output: dict[str, Any] | None
    stream: bool = False


def callback_schema(callback: Callable[..., Any], *, queue: bool = False) -> CallbackSchema | None:
    """The input and output JSON schemas of `callback` (None for a classic `(text, data)` one);
    `queue`: a parameter named `q` takes the queue. Definitions are under `$defs`."""
    typed = read_signature(callback, bound=("q",) if queue else ())
    if typed is None:
        return None
    outputs = typed.outputs
    return CallbackSchema(
        typed.inputs.json_schema(), outputs.json_schema() if outputs else None, bool(outputs and outputs.stream)
    )
