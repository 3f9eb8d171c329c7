"""A typed service's inputs as plain field descriptions, read from its OpenAPI document: what the
try page builds its form from, what `izzati send --inputs` prints and checks, and what
`Frontend.describe()` returns. Plain JSON in, plain data out: no pydantic, no web stack."""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["Field", "TYPED_MARK", "describe_inputs", "check_inputs", "route_path"]

TYPED_MARK = "x-izzati-typed"
"""The key a typed callback's operation carries in `/openapi.json`."""

_FILE_MARK = "x-izzati-file"


class Field(TypedDict):
    """One input of a typed callback."""

    name: str
    type: str  # string, integer, number, boolean, file, object, any
    required: bool
    multiple: bool  # a list: the field may be sent several times
    default: Any  # None when there is none (see has_default)
    has_default: bool
    description: str
    choices: list[Any]  # the allowed values (Literal, Enum), or []
    minimum: float | None
    maximum: float | None
    accept: list[str]  # a file field's accepted media types ([]: any)


def _resolve(schema: Any, components: dict[str, Any]) -> dict[str, Any]:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema if isinstance(schema, dict) else {}


def _field(name: str, raw: dict[str, Any], required: bool, components: dict[str, Any]) -> Field:
    schema = _resolve(raw, components)
    options = [_resolve(each, components) for each in schema.get("anyOf", [])]
    nonnull = [each for each in options if each.get("type") != "null"]
    inner = nonnull[0] if len(nonnull) == 1 else schema
    multiple = inner.get("type") == "array"
    item = _resolve(inner.get("items", {}), components) if multiple else inner
    if _FILE_MARK in item:
        kind = "file"
    elif "enum" in item or "const" in item:
        kind = item.get("type", "string")
    else:
        kind = str(item.get("type", "any"))
    choices = list(item.get("enum", [item["const"]] if "const" in item else []))
    minimum = item.get("minimum", item.get("exclusiveMinimum"))
    maximum = item.get("maximum", item.get("exclusiveMaximum"))
    return Field(
        name=name,
        type=kind,
        required=required,
        multiple=multiple,
        default=raw.get("default", schema.get("default")),
        has_default="default" in raw or "default" in schema,
        description=str(raw.get("description") or schema.get("description") or inner.get("description") or ""),
        choices=choices,
        minimum=minimum,
        maximum=maximum,
        accept=list(item.get(_FILE_MARK, [])),
    )


def route_path(document: dict[str, Any], url_path: str) -> str:
    """The route a URL calls: the longest of the document's paths that `url_path` ends with
    (`/predict` for `http://host/predict`, also under a prefix); `/` when none does."""
    found = [path for path in document.get("paths", {}) if path != "/" and url_path.rstrip("/").endswith(path)]
    return max(found, key=len, default="/")


def describe_inputs(document: dict[str, Any], path: str = "/") -> list[Field] | None:
    """The inputs of the typed callback at `path` (POST), in order; None for a classic
    `(text, data)` callback (or no such route)."""
    operation = document.get("paths", {}).get(path, {}).get("post", {})
    if not operation.get(TYPED_MARK):
        return None
    components = document.get("components", {}).get("schemas", {})
    content = operation.get("requestBody", {}).get("content", {})
    schema = _resolve(content.get("multipart/form-data", {}).get("schema", {}), components)
    required = set(schema.get("required", []))
    return [_field(name, raw, name in required, components) for name, raw in schema.get("properties", {}).items()]


def _wrong(field: Field, value: str) -> str | None:
    if field["choices"] and value not in [str(choice) for choice in field["choices"]]:
        return f"{field['name']}={value!r}: one of {', '.join(str(choice) for choice in field['choices'])}"
    if field["type"] == "integer":
        try:
            int(value)
        except ValueError:
            return f"{field['name']}={value!r}: not a whole number"
    elif field["type"] == "number":
        try:
            float(value)
        except ValueError:
            return f"{field['name']}={value!r}: not a number"
    elif field["type"] == "boolean" and value.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        return f"{field['name']}={value!r}: not true or false"
    return None


def check_inputs(fields: list[Field], text: dict[str, Any], files: dict[str, int]) -> list[str]:
    """What is wrong with `text` (name to value or list of values) and `files` (field name to
    how many files) for these inputs, one line each (the server has the last word)."""
    known = {field["name"]: field for field in fields}
    problems = [f"{name}: no such input" for name in [*text, *files] if name not in known]
    for field in fields:
        name = field["name"]
        given = files.get(name, 0) if field["type"] == "file" else text.get(name)
        if field["required"] and not given:
            problems.append(f"{name}: required ({field['type']})")
            continue
        if field["type"] == "file" and name in text:
            problems.append(f"{name}: a file (send it with -f {name}=PATH)")
        values = given if isinstance(given, list) else [] if given is None or field["type"] == "file" else [given]
        if len(values) > 1 and not field["multiple"]:
            problems.append(f"{name}: one value only, {len(values)} given")
        problems += [wrong for value in values if (wrong := _wrong(field, str(value))) is not None]
    return problems
