"""A typed callback's inputs: one pydantic model built from its parameters, validating what any
wire form brought (form strings coerced as FastAPI coerces them, JSON values as given).

The model is built once, when the `Backend` is made; a request costs one call into pydantic's
compiled validator.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from typing import Annotated, Any, Union, get_args, get_origin

import pydantic
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from ..exceptions import InvalidInput
from ..files import UploadedFile
from .files import Accept, file_type

__all__ = ["Inputs", "Validated", "rewrite_files", "mentions_file", "is_list", "invalid_input"]

_LISTS = (list, set, frozenset, tuple, collections.abc.Sequence, collections.abc.Set)


class Validated:
    """A request's inputs after validation: `value` for the callback, `text` as it was sent
    (normalized: empty form fields dropped), kept for a job."""

    __slots__ = ("value", "text")

    def __init__(self, value: Any, text: dict[str, Any]) -> None:
        self.value = value
        self.text = text


def _union(args: tuple[Any, ...]) -> Any:
    return Union.__getitem__(args)  # noqa: UP007 - built from a tuple


def rewrite_files(annotation: Any, accept: Accept | None = None) -> Any:
    """`annotation` with each `izzati.File` made a pydantic field that checks the upload
    (against its `Accept`, when one is given)."""
    if annotation is UploadedFile:
        return Annotated.__class_getitem__((UploadedFile, *file_type(accept)))  # type: ignore[attr-defined]
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *meta = get_args(annotation)
        accept = next((each for each in meta if isinstance(each, Accept)), accept)
        others = [each for each in meta if not isinstance(each, Accept)]
        new = rewrite_files(base, accept)
        return Annotated.__class_getitem__((new, *others)) if others else new
    if origin is list:
        item = rewrite_files(get_args(annotation)[0], accept)
        return list.__class_getitem__(item)
    if origin is Union or origin is types.UnionType:
        return _union(tuple(rewrite_files(each, accept) for each in get_args(annotation)))
    return annotation


def _bare(annotation: Any) -> Any:
    """`annotation` without `Annotated[...]` and without `None` in a union."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [each for each in get_args(annotation) if each is not type(None)]
        if len(rest) == 1:
            return _bare(rest[0])
    return annotation


def mentions_file(annotation: Any) -> bool:
    """Whether an annotation is, or holds, `izzati.File`."""
    if annotation is UploadedFile:
        return True
    return any(mentions_file(each) for each in get_args(annotation))


def is_list(annotation: Any) -> bool:
    """Whether a field takes several values (a form field sent several times)."""
    bare = _bare(annotation)
    return bare in _LISTS or get_origin(bare) in _LISTS


def record_fields(record: Any) -> dict[str, Any]:
    """The annotated fields of a pydantic model, dataclass or TypedDict."""
    if isinstance(record, type) and issubclass(record, BaseModel):
        return {name: info.annotation for name, info in record.model_fields.items()}
    try:
        return typing.get_type_hints(record, include_extras=True)
    except Exception:
        return {}


def invalid_input(error: ValidationError) -> InvalidInput:
    """The 422 that lists every problem pydantic found."""
    fields = [
        {"loc": list(each["loc"]), "msg": each["msg"], "type": each["type"]}
        for each in error.errors(include_url=False, include_context=False, include_input=False)
    ]
    said = "; ".join(f"{'.'.join(str(part) for part in each['loc']) or 'body'}: {each['msg']}" for each in fields)
    count = "1 input is" if len(fields) == 1 else f"{len(fields)} inputs are"
    return InvalidInput(f"{count} not valid: {said}", fields)


class Inputs:
    """The inputs of a typed callback, from its parameters, or one record type (a pydantic
    model parameter that is the whole body; a batch callback's item).

    Arguments:
        name: the model's name (in the OpenAPI document).
        parameters: the callback's input parameters (none when `record` is given).
        record: the type that is the whole body.
        body_name: the parameter that takes the record (None: it is a batch's item).
    """

    def __init__(
        self,
        name: str,
        parameters: list[inspect.Parameter] = (),  # type: ignore[assignment]
        *,
        record: Any = None,
        body_name: str | None = None,
    ) -> None:
        self.record = record
        self.body_name = body_name
        if record is not None:
            self.adapter: TypeAdapter[Any] = TypeAdapter(record)
            fields = record_fields(record)
            self.model: type[BaseModel] | None = (
                record if isinstance(record, type) and issubclass(record, BaseModel) else None
            )
        else:
            fields = {param.name: param.annotation for param in parameters}
            definitions: dict[str, Any] = {
                param.name: (rewrite_files(param.annotation), ... if param.default is param.empty else param.default)
                for param in parameters
            }
            config = ConfigDict(arbitrary_types_allowed=True, title=name)
            self.model = pydantic.create_model(name, __config__=config, **definitions)
            self.adapter = TypeAdapter(self.model)
        self.files = frozenset(key for key, annotation in fields.items() if mentions_file(annotation))
        self.lists = frozenset(key for key, annotation in fields.items() if is_list(annotation))
        self.validator = self.adapter.validator

    def prepare(self, text: dict[str, Any], files: list[UploadedFile], form: bool) -> dict[str, Any]:
        """The fields to validate: `text` (normalized in place for a form: an empty field is a field
        not sent, a list field sent once is a list of one) and the files by their field names."""
        if form:
            for key in [key for key, value in text.items() if value == ""]:
                del text[key]  # as FastAPI: the browser sends an empty input for "no value"
            for key in self.lists.intersection(text):
                if not isinstance(text[key], list):
                    text[key] = [text[key]]
        if not files:
            return text
        fields = dict(text)
        for upload in files:
            name = upload.name
            if name in fields:
                previous = fields[name]
                fields[name] = [*previous, upload] if isinstance(previous, list) else [previous, upload]
            else:
                fields[name] = [upload] if name in self.lists else upload
        return fields

    def validate(self, fields: dict[str, Any]) -> Any:
        """The callback's input: a model instance (raises `InvalidInput`, listing every problem)."""
        try:
            return self.validator.validate_python(fields)
        except ValidationError as error:
            raise invalid_input(error) from None

    def parse(self, text: dict[str, Any], files: list[UploadedFile], form: bool) -> Validated:
        """Validate one request's text and files."""
        return Validated(self.validate(self.prepare(text, files, form)), text)

    def arguments(self, value: Any) -> dict[str, Any]:
        """The keyword arguments of the callback for a validated value."""
        if self.record is None:
            return dict(value.__dict__)
        return {self.body_name: value} if self.body_name is not None else {}

    def json_schema(self, ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
        """The JSON schema of the inputs (validation mode)."""
        return self.adapter.json_schema(ref_template=ref_template)
