"""End-to-end: an image that carries a model, built by `docker compose up --build` for web and worker.

The scikit-learn example (examples/iris) in the repository's docker-compose.yml, the way
docs/real-model.md tells a user to run it: `.env` names the example's directory
(IZZATI_CALLBACKS, so its requirements.txt is installed in the image) and its callback, and
`up --build` builds that one image for the web and the workers. Then a prediction over HTTP, a
job that only a worker container can run (redis://), and `down`. The build time and the image's
size are printed (`[compose model]`).

The project is copied to a temporary directory (so `.env` is this test's own). The one
test-only addition is `build: network: host` (these machines reach the package index only
from the host's network). Needs Docker: `scripts/docker-setup`; see tests/test_compose.py.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import docker
from tests.support.net import free_tcp_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parent.parent
FIGURES: dict[str, float | str] = {}
OVERRIDE = """\
# test-only: the build reaches the package index from the host's network
services:
  web:
    build:
      network: host
  worker:
    build:
      network: host
"""
# Flowers of the iris data set (which ships with scikit-learn) and their species.
FIELDS = ("sepal_length", "sepal_width", "petal_length", "petal_width")
FLOWERS = [
    (dict(zip(FIELDS, (5.1, 3.5, 1.4, 0.2), strict=True)), "setosa"),
    (dict(zip(FIELDS, (7.0, 3.2, 4.7, 1.4), strict=True)), "versicolor"),
    (dict(zip(FIELDS, (6.3, 3.3, 6.0, 2.5), strict=True)), "virginica"),
]


class Project:
    """A copy of the repository's compose project, run under a unique project name."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.dir = workdir
        self.base = f"http://127.0.0.1:{port}"
        self.name = f"izzatimodel{uuid.uuid4().hex[:8]}"
        self.image = f"izzati-iris:e2e-{uuid.uuid4().hex[:8]}"
        self.command = docker.compose_command() + ["-p", self.name, "-f", "docker-compose.yml"]
        self.command += ["-f", "docker-compose.e2e.yml"]

    def __call__(self, *args: str, check: bool = True, timeout: float = 180) -> str:
        return docker.run(self.command + list(args), cwd=self.dir, check=check, timeout=timeout).stdout

    def images(self, service: str) -> set[str]:
        """The image ids the service's containers run."""
        ids = self("ps", "-q", service).split()
        if not ids:
            return set()
        return set(docker.run([docker.DOCKER, "inspect", "-f", "{{.Image}}", *ids]).stdout.split())


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    FIGURES["engine"] = docker.require_engine()
    work = tmp_path_factory.mktemp("compose-model")
    for name in ("docker-compose.yml", "Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, work / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("izzati", "app", "examples/iris"):
        shutil.copytree(ROOT / name, work / name, ignore=ignore)
    (work / "docker-compose.e2e.yml").write_text(OVERRIDE)
    port = free_tcp_port()
    p = Project(work, port)
    # what docs/real-model.md has a user add to .env (cp .env.example .env first)
    (work / ".env").write_text(
        (ROOT / ".env.example").read_text()
        + "\nIZZATI_CALLBACKS=examples/iris\nIZZATI_CALLBACK=iris:Classifier\n"
        + "IZZATI_WORKER=izzati.examples:print_items\n"
        + f"IZZATI_IMAGE={p.image}\nIZZATI_PORT={port}\n"
    )
    try:
        t0 = time.monotonic()
        p("build", timeout=900)  # = the build of `up --build`, timed apart from the start
        FIGURES["build_s"] = round(time.monotonic() - t0, 1)
        FIGURES["image_mb"] = docker.image_size_mb(p.image)
        t0 = time.monotonic()
        p("up", "-d", "--build", timeout=600)
        docker.wait("/ready", lambda: httpx.get(p.base + "/ready", timeout=2).status_code == 200, 120)
        FIGURES["up_build_to_ready_s"] = round(time.monotonic() - t0, 1)
        yield p
    finally:
        if p("ps", "-q", "web", check=False).strip():
            print("\n[compose model] last logs:\n" + p("logs", "--no-color", "--tail", "40", check=False))
        p("down", "-v", "--remove-orphans", "-t", "5", check=False)
        docker.run([docker.DOCKER, "rmi", "-f", p.image], check=False)
        print("\n[compose model] " + json.dumps(FIGURES), flush=True)


@pytest.fixture(scope="module")
def client(project: Project) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=project.base, timeout=30) as c:
        yield c


def test_web_and_worker_run_the_one_image_built_with_the_requirements(project: Project) -> None:
    built = docker.run([docker.DOCKER, "image", "inspect", "-f", "{{.Id}}", project.image]).stdout.strip()
    assert project.images("web") == {built}
    assert project.images("worker") == {built}
    version = project("exec", "-T", "worker", "python", "-c", "import sklearn; print(sklearn.__version__)")
    assert version.strip()[0].isdigit(), version
    listing = project("exec", "-T", "web", "ls", "/callbacks").split()
    assert "iris.py" in listing and "requirements.txt" in listing


def test_a_prediction(client: httpx.Client) -> None:
    for features, species in FLOWERS:
        r = client.post("/", json=features)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["species"] == species, body
        assert abs(sum(body["probabilities"].values()) - 1) < 1e-3
    form = {"sepal_length": "6.3", "sepal_width": "3.3", "petal_length": "6.0", "petal_width": "2.5"}
    r = client.post("/", data=form)
    assert r.status_code == 200 and r.json()["species"] == "virginica", r.text
    bad = client.post("/", json={"sepal_length": 1})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_input", bad.text


def _job_status(client: httpx.Client, job: str) -> dict[str, Any]:
    status: dict[str, Any] = client.get(f"/jobs/{job}").json()
    return status


def test_a_job_runs_in_a_worker_container(project: Project, client: httpx.Client) -> None:
    # With no worker container, a job stays queued: on redis:// the web never runs jobs itself.
    project("stop", "-t", "5", "worker")
    r = client.post("/jobs", json=FLOWERS[2][0])
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    time.sleep(3)
    assert _job_status(client, job)["status"] == "queued"
    project("start", "worker")
    status = docker.wait(
        "the job done by the worker container",
        lambda: (s := _job_status(client, job))["status"] in ("done", "failed") and s,
        120,
    )
    assert status["status"] == "done", status
    result = client.get(f"/jobs/{job}/result")
    assert result.status_code == 200 and result.json()["species"] == "virginica", result.text


def test_down(project: Project) -> None:
    t0 = time.monotonic()
    project("down", "-v", "--remove-orphans")
    FIGURES["down_s"] = round(time.monotonic() - t0, 1)
    assert not project("ps", "-q").split()
