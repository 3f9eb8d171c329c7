"""`@izzati.multiplexed`: many models per process, through real uvicorn servers and real HTTP. A
loader that records its loads and teardowns shows the LRU order, the teardown of an evicted model,
one load for concurrent first requests, 404 for an unknown id, the metrics, and jobs that keep
their model id (on a spawned service)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import izzati
from izzati import Backend
from izzati.multiplex import ModelCache
from tests.callbacks import multiplexed
from tests.callbacks.multiplexed import Classifier
from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc
from tests.test_metrics import parse, value

Serve = Callable[..., str]


def _served(serve: Serve) -> tuple[Classifier, str]:
    """A `Classifier` served, once its `setup()` has made what the tests read."""
    model = Classifier()
    return model, serve(Backend(model).app, set_up=True) + "/"


def ask(url: str, model_id: str | None, **headers: str) -> httpx.Response:
    if model_id is not None:
        headers["Izzati-Model"] = model_id
    return httpx.post(url, data={"x": "1"}, headers=headers, timeout=30)


def test_the_least_recently_used_model_is_evicted_and_torn_down(serve: Serve) -> None:
    model, url = _served(serve)
    for key in ["m1", "m2", "m3", "m1", "m4"]:  # m1 used again: m2 is the least recently used
        reply = ask(url, key)
        assert reply.status_code == 200, reply.text
        assert reply.json()["model"] == key and reply.json()["asked"] == key
        assert reply.json()["released"] is False
    assert model.loads() == ["m1", "m2", "m3", "m4"]
    assert model.teardowns() == ["m2"]
    assert model.load.resident() == ["m3", "m1", "m4"]
    assert ask(url, "m2").json()["model"] == "m2"  # loaded again; m3 goes
    assert model.loads() == ["m1", "m2", "m3", "m4", "m2"]
    assert model.teardowns() == ["m2", "m3"]


def test_a_model_evicted_while_a_request_uses_it_is_torn_down_after_that_request(serve: Serve) -> None:
    model = multiplexed.OneAtATime()
    url = serve(Backend(model).app, set_up=True) + "/"
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(lambda: httpx.post(url, data={"hold": "1"}, headers={"Izzati-Model": "m1"}, timeout=30))
        model_inside = time.monotonic() + 20
        while "m1" not in model.inside:  # m1's request has its model and waits
            assert time.monotonic() < model_inside and not first.done(), first
            time.sleep(0.01)
        assert ask(url, "m2").json() == {"model": "m2", "released": False}  # m2 evicts m1, in use
        assert ("teardown", "m1") not in model.events  # not under the request that holds it
        model.release("m1")
        assert first.result().json() == {"model": "m1", "released": False}
    # torn down once its request ended (after the answer), and only once
    assert [e for e in model.events if e[1] == "m1"] == [("load", "m1"), ("answer", "m1"), ("teardown", "m1")]
    assert ask(url, "m1").json() == {"model": "m1", "released": False}  # loaded again; m2 goes at once
    assert model.events[-2:] == [("teardown", "m2"), ("answer", "m1")]


def test_concurrent_first_requests_for_a_model_load_it_once(serve: Serve) -> None:
    model, url = _served(serve)
    model.gate.clear()  # the first load waits here until every request is in the callback
    with ThreadPoolExecutor(8) as pool:
        replies = [pool.submit(ask, url, "m5") for _ in range(8)]
        deadline = time.monotonic() + 30
        while model.entered < 8:
            assert time.monotonic() < deadline, model.entered
            time.sleep(0.01)
        model.gate.set()
        answers = [reply.result() for reply in replies]
    assert [a.status_code for a in answers] == [200] * 8
    assert {a.json()["model"] for a in answers} == {"m5"}
    assert model.loads() == ["m5"]


def test_an_unknown_model_is_404_and_no_model_is_400(serve: Serve) -> None:
    model, url = _served(serve)
    unknown = ask(url, "gpt-9")
    assert unknown.status_code == 404
    detail = "tests.callbacks.multiplexed:Classifier.load has no model 'gpt-9'"
    assert unknown.json() == {"error": "unknown_model", "detail": detail}
    missing = ask(url, None)
    assert missing.status_code == 400 and missing.json()["error"] == "model_required"
    assert "Izzati-Model" in missing.json()["detail"]
    for bad in ["", "m" * 300]:
        reply = ask(url, bad)
        assert reply.status_code == 400 and reply.json()["error"] == "model_required", reply.text
    assert ask(url, "gpt-9").status_code == 404  # a failed load is not kept: the loader is asked again
    assert ask(url, "m0").status_code == 200  # the server serves on
    assert model.loads() == ["m0"] and model.attempts == ["gpt-9", "gpt-9", "m0"]


def test_a_module_level_loader_and_one_cache_per_instance(serve: Serve) -> None:
    url = serve(Backend(multiplexed.tokenize).app) + "/"
    for key in ["m1", "m2", "m3"]:
        assert ask(url, key).json()["tokenizer"] == f"tokenizer of {key}"
    assert ask(url, "m3").json()["resident"] == ["m2", "m3"]
    assert ask(url, "zz").status_code == 404
    first, second = Classifier(), Classifier()
    first.setup()
    second.setup()
    assert isinstance(first.load, ModelCache) and first.load is not second.load
    assert first.load("m1").model_id == "m1" and second.load.resident() == []


def test_max_models_must_be_at_least_one_and_the_loader_plain() -> None:
    with pytest.raises(ValueError, match="max_models=0"):
        izzati.multiplexed(max_models=0)

    async def load(model_id: str) -> str:
        return model_id

    with pytest.raises(TypeError, match="is async; make the loader a plain def"):
        izzati.multiplexed(max_models=2)(load)


def test_metrics_count_loads_evictions_and_resident_models(serve: Serve) -> None:
    model, url = _served(serve)
    label = {"loader": "tests.callbacks.multiplexed:Classifier.load"}

    def figures() -> tuple[float, float, float, float]:
        samples = parse(httpx.get(url + "metrics").text)
        return (
            value(samples, "izzati_model_loads_total", **label),
            value(samples, "izzati_model_evictions_total", **label),
            value(samples, "izzati_model_load_failures_total", **label),
            value(samples, "izzati_models_resident", **label),
        )

    loads, evictions, failures, _ = figures()  # other tests of this process may have counted before
    for key in ["m1", "m2", "m3", "m4", "m5", "m1", "nope"]:
        ask(url, key)
    after = figures()
    assert after == (loads + 6, evictions + 3, failures + 1, 3)


def test_a_job_runs_with_the_model_its_request_named(spawn: Callable[..., Proc], tmp_path: Path) -> None:
    port = free_tcp_port()
    log = tmp_path / "models.log"
    env = {
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_CALLBACK": "multiplexed:Classifier",
        "MODEL_LOG": str(log),
    }
    spawn([PYTHON, "-m", "app"], env=env)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/health")
    statuses = {key: _job(url, key) for key in ["m7", "m8", "unknown"]}
    for key in ["m7", "m8"]:
        status, result = statuses[key]
        assert status["status"] == "done" and status["model"] == key, status
        assert result["model"] == key and result["asked"] == key, result
    failed, _ = statuses["unknown"]
    assert failed["status"] == "failed" and failed["model"] == "unknown"
    assert failed["error"]["error"] == "unknown_model"
    loaded = [line.split()[1] for line in log.read_text().splitlines() if line.startswith("load ")]
    assert loaded == ["m7", "m8"]
    plain = httpx.post(url + "/jobs", data={"x": "1"}).json()  # no header: the job says so, and fails clearly
    assert plain["model"] is None
    status = _wait(url, plain["url"])
    assert status["status"] == "failed" and status["error"]["error"] == "model_required", status


def test_a_redis_worker_runs_each_job_with_its_model(
    redis_server: str, spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    port = free_tcp_port()
    log = tmp_path / "models.log"
    env = {
        "IZZATI_QUEUE_URL": redis_server,
        "IZZATI_JOB_DIR": str(tmp_path / "jobs"),
        "IZZATI_CALLBACK": "multiplexed:Classifier",
        "MODEL_LOG": str(log),
    }
    spawn([PYTHON, "-m", "app"], env={**env, "IZZATI_HOST": "127.0.0.1", "IZZATI_PORT": str(port)})
    worker = spawn([PYTHON, "-m", "app", "worker"], env=env)
    worker.wait_output(lambda out: "started on" in out)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/health")
    for key in ["m1", "m2", "m1"]:
        status, result = _job(url, key)
        assert status["status"] == "done" and result["model"] == key, (status, result)
        assert result["pid"] == worker.popen.pid
    lines = [line.split() for line in log.read_text().splitlines()]
    assert lines == [["load", "m1", str(worker.popen.pid)], ["load", "m2", str(worker.popen.pid)]]


def _job(url: str, model_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    headers = {"Prefer": "respond-async", "Izzati-Model": model_id}
    submitted = httpx.post(url + "/", data={"x": "1"}, headers=headers)
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["model"] == model_id
    job = submitted.json()["url"]
    status = _wait(url, job)
    result = httpx.get(url + job + "/result").json() if status["status"] == "done" else {}
    return status, result


def _wait(url: str, job: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (status := httpx.get(url + job).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    return status  # type: ignore[no-any-return]
