"""The Kubernetes manifests (deploy/kubernetes), offline: every kustomize directory is rendered
with the real kubectl, every object validated against the Kubernetes or KEDA schemas, and what
the schemas cannot see is checked here: probes, security, grace periods against the settings,
the scaler's streams against the queue's, and every variable against `Settings`.

No cluster runs here: nothing is applied, no pod starts (see deploy/kubernetes/README.md).
"""

from __future__ import annotations

import copy
import math
import os
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from izzati.queues._stream import GROUP
from izzati.settings import ENV_PREFIX, Settings
from tests.support.kubernetes import DEPLOY, Manifest, container_env, find, render, secret_data, validate

DIRECTORIES = [DEPLOY / "base", *sorted(p.parent for p in DEPLOY.glob("overlays/*/kustomization.yaml"))]
# Settings that another branch is adding. Each is accepted only while `Settings` lacks it: once
# the field exists, the manifests' value is checked like any other.
PENDING = {"IZZATI_JOB_STORE"}  # the S3 job store (`s3://bucket/prefix`), being built elsewhere
# The standard AWS variables the S3 job store reads (endpoint, credentials, region), and only those.
AWS = {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION"}
# The trigger metadata KEDA's redis-streams scaler reads (v2.20.2, pkg/scalers/redis_streams_scaler.go
# and the connection fields of redis_scaler.go): a misspelt key would be ignored silently.
KEDA_REDIS_STREAMS_KEYS = {
    *("address", "addresses", "host", "hosts", "port", "ports", "username", "password", "databaseIndex"),
    *("enableTLS", "unsafeSsl", "sentinelUsername", "sentinelPassword", "sentinelMaster"),
    *("stream", "consumerGroup", "pendingEntriesCount", "streamLength", "lagCount", "activationLagCount"),
}


@pytest.fixture(scope="module", params=DIRECTORIES, ids=lambda p: str(p.relative_to(DEPLOY)))
def objects(request: pytest.FixtureRequest) -> list[Manifest]:
    directory: Path = request.param
    return render(directory)


def pod(deployment: Manifest) -> Manifest:
    spec: Manifest = deployment["spec"]["template"]["spec"]
    return spec


def izzati_containers(objects: list[Manifest]) -> list[tuple[Manifest, Manifest]]:
    """(Deployment, container) for every container that runs the izzati image."""
    return [
        (d, c)
        for d in objects
        if d["kind"] == "Deployment"
        for c in pod(d)["containers"]
        if c["image"].split(":")[0].rsplit("/", 1)[-1] == "izzati"
    ]


def settings_of(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a process with exactly this environment reads (unknown names dropped)."""
    with monkeypatch.context() as m:
        for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
            m.delenv(name)
        for name, value in env.items():
            m.setenv(name, value)
        return Settings(_env_file=None)


def test_every_object_is_valid_against_its_schema(objects: list[Manifest]) -> None:
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "ScaledObject"} <= kinds
    for obj in objects:
        validate(obj)


def _set(path: str, value: Any) -> Callable[[Manifest], None]:
    """An edit that sets the field at `path` (keys and list indexes, split by /)."""

    def edit(obj: Manifest) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split("/")]
        node: Any = obj
        for key in parents:
            node = node[key]
        node[last] = value

    return edit


RESOURCES = "spec/template/spec/containers/0/resources"


# what the API server refuses and the JSON schemas let pass ("string or number", "string")
@pytest.mark.parametrize(
    ("kind", "edit", "expected"),
    [
        ("Deployment", _set(RESOURCES + "/requests/memory", "256MiBs"), "'256MiBs' is not a quantity"),
        ("Deployment", _set(RESOURCES + "/requests/cpu", "250mm"), "'250mm' is not a quantity"),
        ("Deployment", _set(RESOURCES + "/limits/memory", "1 Gi"), "'1 Gi' is not a quantity"),
        ("Deployment", _set("metadata/name", "Izzati_Web"), "'Izzati_Web' is not a DNS-1123 subdomain"),
        ("Service", _set("metadata/name", "9izzati"), "'9izzati' is not a DNS-1035 label"),
        ("Deployment", _set("metadata/labels", {"app": "izzati web"}), "'izzati web' .* is not a label value"),
        ("Deployment", _set("metadata/labels", {"-app": "izzati"}), "key '-app' is not a qualified name"),
        ("Deployment", _set("metadata/labels", {"Example.com/app": "x"}), "prefix is not a DNS-1123 subdomain"),
        ("Deployment", _set("spec/template/metadata/labels", {"app": "x" * 64}), "is not a label value"),
        ("Service", _set("spec/selector", {"app!": "web"}), "key 'app!' is not a qualified name"),
        ("Deployment", _set("spec/template/spec/containers/0/name", "Web"), "'Web' is not a DNS-1123 label"),
        ("ScaledObject", _set("metadata/name", "Izzati_Worker"), "'Izzati_Worker' is not a DNS-1123 subdomain"),
        ("ScaledObject", _set("metadata/labelz", {"app": "x"}), "'labelz' was unexpected"),
        ("ScaledObject", _set("metadata/labels", {"app": 1}), "value 1 of 'app' is not a label value"),
    ],
    ids=[
        "memory-256MiBs",
        "cpu-250mm",
        "memory-with-a-space",
        "name-Izzati_Web",
        "service-name-starts-with-a-digit",
        "label-value-with-a-space",
        "label-key-starts-with-a-dash",
        "label-prefix-upper-case",
        "label-value-too-long",
        "service-selector-key",
        "container-name-upper-case",
        "keda-name",
        "keda-metadata-unknown-field",
        "keda-metadata-label-type",
    ],
)
def test_validation_refuses_what_the_api_server_refuses(
    kind: str, edit: Callable[[Manifest], None], expected: str
) -> None:
    objects = render(DEPLOY / "base")
    obj = copy.deepcopy(next(o for o in objects if o["kind"] == kind))
    validate(obj)
    edit(obj)
    with pytest.raises(AssertionError, match=expected):
        validate(obj)


def test_validation_refuses_broken_objects() -> None:
    objects = render(DEPLOY / "base")
    web, scaler = find(objects, "Deployment", "izzati-web"), find(objects, "ScaledObject", "izzati-worker")
    broken: list[tuple[str, Manifest]] = []
    typo = copy.deepcopy(web)
    pod(typo)["containers"][0]["readinesProbe"] = pod(typo)["containers"][0].pop("readinessProbe")
    broken.append(("readinesProbe", typo))
    wrong_type = copy.deepcopy(web)
    wrong_type["spec"]["replicas"] = "2"
    broken.append(("'2' is not of type 'integer'", wrong_type))
    crd_typo = copy.deepcopy(scaler)
    crd_typo["spec"]["minReplicasCount"] = 0
    broken.append(("minReplicasCount", crd_typo))
    crd_type = copy.deepcopy(scaler)
    crd_type["spec"]["triggers"][0]["metadata"]["lagCount"] = 1
    broken.append(("1 is not of type 'string'", crd_type))
    for expected, obj in broken:
        with pytest.raises(AssertionError, match=expected):
            validate(obj)


def test_every_variable_is_a_setting_with_a_valid_value(
    objects: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    pending = {name for name in PENDING if name not in known}
    containers = izzati_containers(objects)
    assert containers, "no container runs the izzati image"
    for deployment, container in containers:
        env = container_env(objects, container)
        where = f"{deployment['metadata']['name']}/{container['name']}"
        unknown = sorted(set(env) - known - pending - AWS)
        assert unknown == [], f"{where}: not a setting (`izzati settings` lists them): {unknown}"
        if AWS & set(env):
            assert env.get("IZZATI_JOB_STORE", "").startswith("s3://"), f"{where}: AWS_* without the S3 job store"
        settings_of(env, monkeypatch)  # raises on a value the service would refuse at startup


def test_pods_run_unprivileged_on_a_read_only_root(objects: list[Manifest]) -> None:
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        spec, name = pod(deployment), deployment["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False, name
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] > 0, name
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            c = container["securityContext"]
            assert c["allowPrivilegeEscalation"] is False and c["readOnlyRootFilesystem"] is True, name
            assert c["capabilities"] == {"drop": ["ALL"]}, name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"], name
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{name}: mount of undeclared volume {mount['name']}"


def test_izzati_containers_run_as_the_image_user_with_writable_tmp(objects: list[Manifest]) -> None:
    for deployment, container in izzati_containers(objects):
        assert pod(deployment)["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
        assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/tmp", "/jobs"}


def test_web_probes_port_and_grace_period(objects: list[Manifest], monkeypatch: pytest.MonkeyPatch) -> None:
    web = find(objects, "Deployment", "izzati-web")
    [container] = pod(web)["containers"]
    settings = settings_of(container_env(objects, container), monkeypatch)
    assert web["spec"]["replicas"] >= 2 and container["args"] == ["web"]
    assert {"name": "http", "containerPort": settings.port} in container["ports"]
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    # workers scale from zero: a web pod must stay ready without one (run for real in test_kubernetes_live.py)
    assert settings.ready_without_workers is True
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    needed = float(pre_stop[1]) + settings.graceful_timeout
    assert pod(web)["terminationGracePeriodSeconds"] > needed, "SIGKILL before in-flight requests finish"


def test_worker_grace_period_and_replicas_left_to_keda(
    objects: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = find(objects, "Deployment", "izzati-worker")
    [container] = pod(worker)["containers"]
    settings = settings_of(container_env(objects, container), monkeypatch)
    assert container["args"] == ["worker"]
    assert "replicas" not in worker["spec"], "every apply would reset the count KEDA chose"
    assert pod(worker)["terminationGracePeriodSeconds"] > settings.graceful_timeout
    if settings.metrics_port is not None:
        assert container["ports"] == [{"name": "metrics", "containerPort": settings.metrics_port}]
    else:
        assert container.get("ports") is None
    assert container.get("livenessProbe") is None  # the metrics thread answers whatever the worker does


def test_service_and_budget_select_the_web_pods_only(objects: list[Manifest]) -> None:
    web, worker = find(objects, "Deployment", "izzati-web"), find(objects, "Deployment", "izzati-worker")
    web_labels = web["spec"]["template"]["metadata"]["labels"]
    worker_labels = worker["spec"]["template"]["metadata"]["labels"]
    service = find(objects, "Service", "izzati-web")
    budget = find(objects, "PodDisruptionBudget", "izzati-web")
    for selector in (service["spec"]["selector"], budget["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= web_labels.items() and not selector.items() <= worker_labels.items()
    ports = {p["name"] for p in pod(web)["containers"][0]["ports"]}
    assert all(p["targetPort"] in ports for p in service["spec"]["ports"])
    assert 1 <= budget["spec"]["minAvailable"] < web["spec"]["replicas"], "a drain could never evict a web pod"


def test_jobs_across_web_replicas_use_the_s3_store(objects: list[Manifest]) -> None:
    web = find(objects, "Deployment", "izzati-web")
    env = container_env(objects, pod(web)["containers"][0])
    if web["spec"]["replicas"] > 1 and env.get("IZZATI_JOBS", "true").lower() not in ("false", "0"):
        # a directory store would be private to each pod: a job submitted to one replica is
        # unknown to the other and to every worker
        assert env.get("IZZATI_JOB_STORE", "").startswith("s3://")


def test_scaler_wakes_on_the_lag_and_keeps_unfinished_items(
    objects: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    scaler = find(objects, "ScaledObject", "izzati-worker")
    spec = scaler["spec"]
    worker = find(objects, "Deployment", spec["scaleTargetRef"]["name"])
    settings = settings_of(container_env(objects, pod(worker)["containers"][0]), monkeypatch)
    assert spec["minReplicaCount"] == 0 and 1 <= spec["maxReplicaCount"]
    assert spec["minReplicaCount"] <= spec["maxReplicaCount"]  # the CRD's CEL rule: jsonschema cannot run it
    streams = {f"{settings.queue_name}:stream", f"{settings.queue_name}:jobs:stream"}
    triggers = spec["triggers"]
    assert all(t["type"] == "redis-streams" for t in triggers)
    for t in triggers:
        assert set(t["metadata"]) <= KEDA_REDIS_STREAMS_KEYS, t["name"]
        assert "pendingEntriesCount" not in t["metadata"], "pending counts only items already in workers"
        assert t["metadata"]["activationLagCount"] == "0", "the first item must wake a worker"
    lag = [t["metadata"] for t in triggers if "lagCount" in t["metadata"]]
    length = [t["metadata"] for t in triggers if "streamLength" in t["metadata"]]
    assert sorted(m["stream"] for m in lag) == sorted(streams)
    assert all(m["consumerGroup"] == GROUP and int(m["lagCount"]) >= 1 for m in lag)
    assert sorted(m["stream"] for m in length) == sorted(streams)
    # without consumerGroup KEDA reads XLEN: every item not yet acknowledged (izzati deletes on ack)
    assert all("consumerGroup" not in m and int(m["streamLength"]) >= 1 for m in length)
    _check_redis_connection(objects, scaler, settings.queue_url)


def _check_redis_connection(objects: list[Manifest], scaler: Manifest, queue_url: str) -> None:
    """Each trigger reaches the Redis of IZZATI_QUEUE_URL: host:port, database, TLS, user, password."""
    url = urllib.parse.urlsplit(queue_url)
    address = f"{url.hostname}:{url.port or 6379}"
    database = int(url.path.strip("/") or 0)
    for trigger in scaler["spec"]["triggers"]:
        md, name = trigger["metadata"], trigger["name"]
        assert md["address"] == address, f"{name}: KEDA reads {md['address']}, izzati {address}"
        assert int(md.get("databaseIndex", "0")) == database, name
        assert (md.get("enableTLS") == "true") == (url.scheme == "rediss"), f"{name}: TLS differs"
        if url.password is None:
            assert "authenticationRef" not in trigger, name
            continue
        auth = find(objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])
        values = {r["parameter"]: secret_data(objects, r["name"])[r["key"]] for r in auth["spec"]["secretTargetRef"]}
        expected = {"password": urllib.parse.unquote(url.password)}
        if url.username:
            expected["username"] = urllib.parse.unquote(url.username)
        assert values == expected, f"{name}: KEDA logs in differently from IZZATI_QUEUE_URL"


def test_secret_and_config_volumes_exist(objects: list[Manifest]) -> None:
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        for volume in pod(deployment).get("volumes", []):
            if "secret" in volume:
                find(objects, "Secret", volume["secret"]["secretName"])
            if "configMap" in volume:
                find(objects, "ConfigMap", volume["configMap"]["name"])


def _size(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}  # nginx sizes: 1024-based
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].isalpha() else int(value)


def test_ingress_lets_izzati_answer_first(monkeypatch: pytest.MonkeyPatch) -> None:
    checked = 0
    for directory in DIRECTORIES:
        objects = render(directory)
        web = find(objects, "Deployment", "izzati-web")
        settings = settings_of(container_env(objects, pod(web)["containers"][0]), monkeypatch)
        for ingress in (o for o in objects if o["kind"] == "Ingress"):
            notes: dict[str, Any] = ingress["metadata"]["annotations"]
            nginx = {k.removeprefix("nginx.ingress.kubernetes.io/"): v for k, v in notes.items()}
            assert _size(nginx["proxy-body-size"]) >= settings.max_body_bytes, "the proxy's 413 would come first"
            assert nginx["proxy-request-buffering"] == "off" and nginx["proxy-buffering"] == "off"
            assert float(nginx["proxy-send-timeout"]) > settings.read_timeout
            silent = settings.callback_timeout or math.inf
            assert float(nginx["proxy-read-timeout"]) > silent, "IZZATI_CALLBACK_TIMEOUT must be below it"
            for rule in ingress["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    backend = path["backend"]["service"]
                    service = find(objects, "Service", backend["name"])
                    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
            checked += 1
    assert checked >= 1, "no overlay has an Ingress to check"


def test_the_gpu_overlay_gives_each_model_pod_one_gpu_it_names() -> None:
    objects = render(DEPLOY / "overlays" / "gpu")
    for name in ("izzati-web", "izzati-worker"):
        deployment = find(objects, "Deployment", name)
        [container] = pod(deployment)["containers"]
        limits, requests = container["resources"]["limits"], container["resources"]["requests"]
        gpus = int(limits["nvidia.com/gpu"])
        assert gpus >= 1, name
        # an extended resource cannot be overcommitted: a request, if any, equals the limit
        assert requests.get("nvidia.com/gpu", limits["nvidia.com/gpu"]) == limits["nvidia.com/gpu"], name
        tolerations = pod(deployment)["tolerations"]
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations, name
        # the device plugin shows the pod its GPUs as cuda:0 .. cuda:n-1, and only those
        devices = container_env(objects, container)["IZZATI_DEVICES"].split(",")
        assert devices == ["auto"] or devices == [f"cuda:{i}" for i in range(gpus)], (name, devices)
    base = render(DEPLOY / "base")
    for _, container in izzati_containers(base):
        assert "nvidia.com/gpu" not in container["resources"]["limits"], "the base must schedule on any node"
        assert "IZZATI_DEVICES" not in container_env(base, container)
