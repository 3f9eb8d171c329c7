"""Several callbacks on several paths: `Backend({"/": echo, "/classify": Classifier, ...})` and
IZZATI_ROUTES (real uvicorn servers, real clients, real `python -m app` processes)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from izzati import Backend, Frontend
from izzati.examples import echo
from tests.callbacks import routemodels
from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, ROOT, Proc

Spawn = Callable[..., Proc]


def _backend() -> Backend:
    routes: dict[str, Callable[..., Any]] = {
        "/": echo,
        "/classify": routemodels.Classifier,
        "/embed": routemodels.Embedder(),
        "/words": routemodels.words,
    }
    return Backend(routes, access_log=False)


def test_each_path_runs_its_own_callback(serve: Callable[..., str]) -> None:
    url = serve(_backend().app)
    assert httpx.post(url + "/", data={"a": "1"}).json() == {"text": {"a": "1"}, "files": []}
    classified = httpx.post(url + "/classify", data={"a": "2"}, files={"f": ("x.txt", b"x")}).json()
    assert classified["model"] == "classify" and classified["text"] == {"a": "2"} and classified["files"] == ["x.txt"]
    assert httpx.post(url + "/embed", json={"b": 3}).json()["model"] == "embed"
    streamed = httpx.post(url + "/words", data={"text": "one two"}, headers={"Accept": "application/x-ndjson"})
    assert [json.loads(line) for line in streamed.text.splitlines()] == [{"word": "one"}, {"word": "two"}]
    missing = httpx.post(url + "/nothing-here", data={})
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_the_client_and_the_command_take_a_routes_url(serve: Callable[..., str]) -> None:
    url = serve(_backend().app)
    assert Frontend(url + "/classify").send(js={"q": "dog"})["model"] == "classify"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sent = subprocess.run(
        [PYTHON, "-m", "izzati.cli", "send", url + "/embed", "q=cat"], capture_output=True, text=True, env=env
    )
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["model"] == "embed"


def test_openapi_lists_every_route() -> None:
    schema = _backend().app.openapi()
    for path in ("/", "/classify", "/embed", "/words"):
        assert "post" in schema["paths"][path], path
    ids = [schema["paths"][path]["post"]["operationId"] for path in ("/", "/classify", "/embed", "/words")]
    assert len(set(ids)) == 4


def test_wrong_route_tables_are_refused_at_once() -> None:
    for routes, says in [
        ({"/jobs": echo}, "/jobs is the service's own path"),
        ({"/ready/x": echo}, "/ready is the service's own path"),
        ({"classify": echo}, "a path is '/' or '/name'"),
        ({}, "no routes"),
    ]:
        with pytest.raises(ValueError, match=says):
            Backend(routes)


def _start(spawn: Spawn, tmp_path: Path, **env: str) -> tuple[Proc, str]:
    port = free_tcp_port()
    full = {
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_ROUTES": "/=izzati.examples:echo,/classify=routemodels:Classifier,/embed=routemodels:Embedder",
        "SETUP_LOG": str(tmp_path / "setups.log"),
        **env,
    }
    proc = spawn([PYTHON, "-m", "app"], env=full)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/health", proc=proc.popen)
    return proc, url


def test_ready_names_the_routes_still_setting_up(spawn: Spawn, tmp_path: Path) -> None:
    proc, url = _start(spawn, tmp_path, SLOW_ROUTE="embed", SLOW_SETUP="3")
    early = httpx.get(url + "/ready")
    assert early.status_code == 503
    waiting = early.json()["setting_up"]
    assert waiting and all(line.startswith("route /embed: ") for line in waiting), waiting
    deadline = time.monotonic() + 30
    while httpx.get(url + "/ready").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert httpx.post(url + "/embed", data={}).json()["model"] == "embed"


def test_with_two_server_processes_each_routes_setup_runs_exactly_twice(spawn: Spawn, tmp_path: Path) -> None:
    proc, url = _start(spawn, tmp_path, IZZATI_WORKERS="2")
    deadline = time.monotonic() + 30
    while httpx.get(url + "/ready").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    served = {
        (r["model"], r["loaded_by"]) for r in (httpx.post(url + path).json() for path in ["/classify", "/embed"] * 40)
    }
    jobs = {path: _job(url, path) for path in ("/classify", "/embed")}
    for path, (status, result) in jobs.items():
        assert status["route"] == path and result["model"] == path.strip("/"), (status, result)
    lines = [line.split() for line in (tmp_path / "setups.log").read_text().splitlines()]
    assert sorted(route for _, route in lines) == ["classify", "classify", "embed", "embed"]  # jobs included
    assert {(route, int(pid)) for pid, route in lines} >= served
    assert len({pid for pid, _ in lines}) == 2  # the two server processes, each with both models


def _job(url: str, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Submit a job on `path` (Prefer: respond-async); its final status and result."""
    submitted = httpx.post(url + path, data={"on": path}, headers={"Prefer": "respond-async"})
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()["url"]
    deadline = time.monotonic() + 30
    while (status := httpx.get(url + job).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    return status, httpx.get(url + job + "/result").json()


def test_jobs_of_each_route_run_its_callback_on_a_redis_worker(redis_server: str, spawn: Spawn, tmp_path: Path) -> None:
    env = {"IZZATI_QUEUE_URL": redis_server, "IZZATI_JOB_DIR": str(tmp_path / "jobs")}
    proc, url = _start(spawn, tmp_path, **env)
    worker_env = {
        **env,
        "IZZATI_ROUTES": "/=izzati.examples:echo,/classify=routemodels:Classifier,/embed=routemodels:Embedder",
        "SETUP_LOG": str(tmp_path / "worker-setups.log"),
    }
    worker = spawn([PYTHON, "-m", "app", "worker"], env=worker_env)
    worker.wait_output(lambda out: "started on" in out)
    for path in ("/classify", "/embed"):
        status, result = _job(url, path)
        assert status["status"] == "done" and status["route"] == path
        assert result["model"] == path.strip("/") and result["loaded_by"] == worker.popen.pid
    status, result = _job(url, "/")
    assert status["route"] == "/" and result["text"] == {"on": "/"}
    submitted = httpx.post(url + "/jobs", data={"x": "1"}).json()
    assert submitted["route"] == "/"


def test_a_wrong_routes_setting_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IZZATI_")}
    env.update({"PYTHONPATH": str(ROOT), "IZZATI_ROUTES": "/classify"})
    result = subprocess.run([PYTHON, "-m", "app"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line == "izzati: IZZATI_ROUTES='/classify': '/classify': each route is PATH=module:callable, e.g. " + (
        "/classify=mymodel:Classifier"
    )


def test_metrics_count_each_route_under_its_path(spawn: Spawn, tmp_path: Path) -> None:
    proc, url = _start(spawn, tmp_path, IZZATI_JOBS="false")
    for path, times in (("/classify", 3), ("/embed", 2)):
        for _ in range(times):
            assert httpx.post(url + path, data={}).status_code == 200
    deadline = time.monotonic() + 10
    while True:
        counts = {
            sample.labels["route"]: sample.value
            for family in text_string_to_metric_families(httpx.get(url + "/metrics").text)
            for sample in family.samples
            if sample.name == "izzati_requests_total" and sample.labels.get("method") == "POST"
        }
        if counts.get("/classify") == 3 and counts.get("/embed") == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert counts.get("/classify") == 3 and counts.get("/embed") == 2, counts
    assert "other" not in counts
