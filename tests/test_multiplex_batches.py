"""Batching with multiplexed models, through real uvicorn servers and real HTTP: a batch holds the
calls of one model, `izzati.model_id()` in the batch callback is that model, the models a batch
loads are not torn down under it, and a worker batches queued jobs by model the same way."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from izzati import Backend
from tests.callbacks.batchedmodels import Batched, Turns
from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc

Serve = Callable[..., str]


def _ask(url: str, model_id: str | None, n: int, **fields: str) -> httpx.Response:
    headers = {"Izzati-Model": model_id} if model_id is not None else {}
    return httpx.post(url, data={"n": str(n), **fields}, headers=headers, timeout=30)


def test_calls_for_different_models_go_in_different_batches(serve: Serve) -> None:
    url = serve(Backend(Batched()).app) + "/"
    asked = ["m1", "m2", "m1", None, "m2", "m1", None, "m2"]  # all within one batch's wait
    with ThreadPoolExecutor(len(asked)) as pool:
        replies = list(pool.map(lambda i: _ask(url, asked[i], i), range(len(asked))))
    for n, (model_id, reply) in enumerate(zip(asked, replies, strict=True)):
        if model_id is None:  # their own batch, whose callback asks for the model: none named
            assert reply.status_code == 400 and reply.json()["error"] == "model_required", reply.text
            continue
        assert reply.status_code == 200, reply.text
        size = asked.count(model_id)
        assert reply.json() == {"model": model_id, "asked": model_id, "size": size, "released": False, "n": str(n)}


def test_a_model_a_batch_uses_is_torn_down_after_that_batch(serve: Serve) -> None:
    model = Batched()
    url = serve(Backend(model).app, set_up=True) + "/"
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(_ask, url, "m1", 0, hold="1")
        inside = time.monotonic() + 20
        while "m1" not in model.inside:  # m1's batch has its model and waits
            assert time.monotonic() < inside and not first.done(), first
            time.sleep(0.01)
        second = _ask(url, "m2", 1)  # max_models=1: loading m2 evicts m1, in use by the first batch
        assert second.json()["model"] == "m2" and second.json()["released"] is False, second.text
        assert ("teardown", "m1") not in model.events
        model.release("m1")
        assert first.result().json()["released"] is False
    assert [e for e in model.events if e[1] == "m1"] == [("load", "m1"), ("answer", "m1"), ("teardown", "m1")]


def test_due_batches_of_different_models_take_turns(serve: Serve) -> None:
    model = Turns()
    url = serve(Backend(model).app, set_up=True) + "/"
    with ThreadPoolExecutor(7) as pool:
        first = pool.submit(_ask, url, "m1", 0, hold="1")  # runs alone and holds the only batch slot
        inside = time.monotonic() + 20
        while "m1" not in model.inside:
            assert time.monotonic() < inside and not first.done(), first
            time.sleep(0.01)
        later = [pool.submit(_ask, url, "m1", n) for n in range(1, 5)]  # two full batches of m1
        time.sleep(1.0)  # queued behind the held batch
        later += [pool.submit(_ask, url, "m2", n) for n in range(5, 7)]  # then one of m2
        time.sleep(1.0)
        model.release("m1")
        assert all(reply.result().status_code == 200 for reply in [first, *later])
    # m1's second full batch was due first, but m2's goes in between
    assert model.order == [("m1", 1), ("m1", 2), ("m2", 2), ("m1", 2)]


def test_a_worker_batches_queued_jobs_by_model(spawn: Callable[..., Proc]) -> None:
    port = free_tcp_port()
    env = {
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_CALLBACK": "batchedmodels:Batched",
    }
    spawn([PYTHON, "-m", "app"], env=env)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/health")
    asked = ["m3", "m4", "m3", "m4", "m3"]
    with ThreadPoolExecutor(len(asked)) as pool:  # queued together: taken as one batch of jobs
        jobs = list(pool.map(lambda i: _submit(url, asked[i], i), range(len(asked))))
    for n, (model_id, job) in enumerate(zip(asked, jobs, strict=True)):
        status = _wait(url, job["url"])
        assert status["status"] == "done" and status["model"] == model_id, status
        result = httpx.get(url + job["url"] + "/result", timeout=10).json()
        size = asked.count(model_id)
        assert result == {"model": model_id, "asked": model_id, "size": size, "released": False, "n": str(n)}


def _submit(url: str, model_id: str, n: int) -> dict[str, str]:
    reply = httpx.post(url + "/jobs", data={"n": str(n)}, headers={"Izzati-Model": model_id}, timeout=10)
    assert reply.status_code == 202, reply.text
    job: dict[str, str] = reply.json()
    return job


def _wait(url: str, path: str) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status: dict[str, str] = httpx.get(url + path, timeout=10).json()
        if status["status"] in ("done", "failed"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {path} did not end: {status}")
