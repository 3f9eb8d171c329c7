"""What the Kubernetes API server checks beyond the JSON schemas: quantities, object names, label
and annotation keys and values (the rules of k8s.io/apimachinery's validation package), and every
object's metadata against the ObjectMeta schema (a custom resource's CRD schema leaves it open).

The schemas say only "string or number" for a quantity and "string" for a name, so `256MiBs`,
`250mm` or `Izzati_Web` passed them; `kubectl apply` would refuse each.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import jsonschema
import kubernetes_validate
from referencing import Registry, Resource

__all__ = ["rule_errors", "metadata_errors"]

# resource.Quantity: <signedNumber><suffix>, suffix one of the binary SI, decimal SI, or an exponent
QUANTITY = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?")
DNS1123_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")  # at most 63
DNS1035_LABEL = re.compile(r"[a-z](?:[-a-z0-9]*[a-z0-9])?")  # at most 63
DNS1123_SUBDOMAIN = re.compile(rf"{DNS1123_LABEL.pattern}(?:\.{DNS1123_LABEL.pattern})*")  # at most 253
QUALIFIED_NAME = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")  # at most 63
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_SCHEMAS = "kubernetes-json-schema/v{}-local-strict/"
# the names each kind must have (ValidateObjectMeta's nameFn per kind); others: a DNS-1123 subdomain
_NAME_RULES = {"Service": ("DNS-1035 label", DNS1035_LABEL, 63), "Namespace": ("DNS-1123 label", DNS1123_LABEL, 63)}


def _name_error(where: str, value: Any, kind: str) -> str | None:
    rule, pattern, most = _NAME_RULES.get(kind, ("DNS-1123 subdomain", DNS1123_SUBDOMAIN, 253))
    if not isinstance(value, str) or len(value) > most or not pattern.fullmatch(value):
        return f"{where}: {value!r} is not a {rule} (at most {most} characters)"
    return None


def _key_error(where: str, key: str) -> str | None:
    # a qualified name: [prefix/]name, the prefix a DNS-1123 subdomain
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return f"{where}: key {key!r}: its prefix is not a DNS-1123 subdomain"
    if len(name) > 63 or not QUALIFIED_NAME.fullmatch(name):
        return f"{where}: key {key!r} is not a qualified name"
    return None


def _labels_errors(where: str, labels: Any, values: bool = True) -> list[str]:
    errors = []
    for key, value in (labels or {}).items():
        errors.append(_key_error(where, key))
        if values and (not isinstance(value, str) or len(value) > 63 or value and not QUALIFIED_NAME.fullmatch(value)):
            errors.append(f"{where}: value {value!r} of {key!r} is not a label value")
    return [e for e in errors if e]


def _walk_meta(node: Any, path: str, errors: list[str]) -> None:
    # labels wherever they are: metadata, pod templates, selectors (matchLabels, a Service's selector)
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}/{key}"
            if key in ("labels", "matchLabels") or (key == "selector" and path.endswith("/spec") and _flat(value)):
                errors.extend(_labels_errors(here, value))
            elif key == "annotations":
                errors.extend(_labels_errors(here, value, values=False))
            elif key in ("containers", "initContainers") and isinstance(value, list):
                for i, container in enumerate(value):
                    error = _name_error(f"{here}/{i}/name", container.get("name"), "Namespace")  # a DNS-1123 label
                    errors.extend([error] if error else [])
            _walk_meta(value, here, errors)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk_meta(value, f"{path}/{i}", errors)


def _flat(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


@functools.cache
def _schema(filename: str, version: str) -> Any:
    return kubernetes_validate.utils.schema_contents(_SCHEMAS.format(version) + filename, version)


def _walk_quantities(node: Any, schema: Any, path: str, version: str, errors: list[str]) -> None:
    # follow the object through its schema; check each value the schema calls a Quantity
    if not isinstance(schema, dict):
        return
    # a reference: "/api/_definitions.json#/$defs/NAME" from a kind's file, "#/$defs/NAME" within it
    ref = schema.get("$ref", "").rpartition("/$defs/")[2]
    if ref == _QUANTITY:
        if isinstance(node, str) and not QUANTITY.fullmatch(node):
            errors.append(f"{path}: {node!r} is not a quantity (e.g. 256Mi, 250m, 1.5, 2e3)")
        return
    if ref:
        schema = _schema("_definitions.json", version)["$defs"][ref]
    if isinstance(node, dict):
        properties = schema.get("properties", {})
        for key, value in node.items():
            inner = properties.get(key, schema.get("additionalProperties"))
            _walk_quantities(value, inner, f"{path}/{key}", version, errors)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk_quantities(value, schema.get("items"), f"{path}/{i}", version, errors)


def rule_errors(obj: dict[str, Any], version: str) -> list[str]:
    """What the API server (Kubernetes `version`) would refuse in `obj` that the schemas let pass."""
    errors: list[str] = []
    meta = obj.get("metadata", {})
    name_error = _name_error("metadata/name", meta.get("name"), obj["kind"])
    errors.extend([name_error] if name_error else [])
    _walk_meta(obj, "", errors)
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", obj["apiVersion"])  # as kubernetes-validate names files
    try:
        schema = _schema(f"{obj['kind'].lower()}-{api}.json", version)
    except FileNotFoundError:  # a custom resource: its CRD schema has no Quantity
        return errors
    _walk_quantities(obj, schema, "", version, errors)
    return errors


def metadata_errors(meta: Any, version: str) -> list[str]:
    """`meta` against Kubernetes' strict ObjectMeta schema (unknown fields refused)."""
    schema = _schema("objectmeta-meta-v1.json", version)
    registry: Registry = Resource.from_contents(_schema("_definitions.json", version)) @ Registry()
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    return [f"metadata/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(meta)]
