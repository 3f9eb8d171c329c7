"""OpenTelemetry traces through real processes: one trace from an HTTP request through `q.put` on a
real Redis into a real worker process (and a job into the worker's job runner), with the SDK and
its in-memory exporter in each process (tests/callbacks/traced.py)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from izzati import tracing
from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, ROOT, Proc

Spawn = Callable[..., Proc]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def spans(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for_span(path: Path, name: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [s for s in spans(path) if s["name"] == name]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no span {name!r} in {[s['name'] for s in spans(path)]}")


def ids(span: dict[str, Any]) -> tuple[str, str, str | None]:
    """(trace id, span id, parent span id) without the 0x."""
    parent = span.get("parent_id")
    return span["context"]["trace_id"][2:], span["context"]["span_id"][2:], parent[2:] if parent else None


def start(spawn: Spawn, redis_server: str, tmp_path: Path) -> tuple[str, Path, Path]:
    port = free_tcp_port()
    web_log, worker_log = tmp_path / "web.jsonl", tmp_path / "worker.jsonl"
    common = {"IZZATI_QUEUE_URL": redis_server, "IZZATI_CALLBACK": "traced:handle", "IZZATI_WORKER": "traced:process"}
    spawn(
        [PYTHON, "-m", "app"],
        env={**common, "IZZATI_HOST": "127.0.0.1", "IZZATI_PORT": str(port), "TRACE_LOG": str(web_log)},
    )
    spawn([PYTHON, "-m", "app", "worker"], env={**common, "TRACE_LOG": str(worker_log)})
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "health")
    return url, web_log, worker_log


def test_one_trace_runs_from_the_request_through_redis_into_the_worker(
    redis_server: str, spawn: Spawn, tmp_path: Path
) -> None:
    url, web_log, worker_log = start(spawn, redis_server, tmp_path)
    traceparent = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
    reply = httpx.post(url, data={"n": "7"}, headers={"traceparent": traceparent})
    assert reply.json() == {"queued": "7"}
    work = wait_for_span(worker_log, "work")
    server = wait_for_span(web_log, "POST /")
    callback = wait_for_span(web_log, "izzati.callback")
    publish = wait_for_span(web_log, "publish izzati")
    process = wait_for_span(worker_log, "process izzati")

    assert ids(server)[0] == TRACE_ID and ids(server)[2] == CLIENT_SPAN  # the client's trace goes on
    assert server["kind"] == "SpanKind.SERVER"
    assert server["attributes"]["http.response.status_code"] == 200
    assert ids(callback)[2] == ids(server)[1]
    assert ids(publish)[2] == ids(callback)[1] and publish["kind"] == "SpanKind.PRODUCER"
    # across Redis, into another process: the worker's span is a child of the put
    assert ids(process)[0] == TRACE_ID and ids(process)[2] == ids(publish)[1]
    assert process["kind"] == "SpanKind.CONSUMER"
    assert ids(work)[0] == TRACE_ID and ids(work)[2] == ids(process)[1]  # the worker's own span nests
    assert work["attributes"]["n"] == "7"


def test_a_job_is_traced_into_the_worker_that_runs_it(redis_server: str, spawn: Spawn, tmp_path: Path) -> None:
    url, web_log, worker_log = start(spawn, redis_server, tmp_path)
    submitted = httpx.post(url + "jobs", data={"n": "9"}, headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"})
    job_id = submitted.json()["id"]
    job = wait_for_span(worker_log, "process izzati:jobs")
    server = wait_for_span(web_log, "POST /jobs")
    assert job["attributes"]["izzati.job.id"] == job_id
    assert ids(job)[0] == TRACE_ID and ids(job)[2] == ids(server)[1]
    # the job's callback put an item: its worker span is in the same trace too
    deadline = time.monotonic() + 20
    while not any(s["name"] == "work" and ids(s)[0] == TRACE_ID for s in spans(worker_log)):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_without_a_tracer_provider_tracing_stays_off() -> None:
    # this test process sets no provider: the hot path sees ACTIVE False and makes no span
    assert tracing.refresh() is False
    assert tracing.current_traceparent() is None


def test_izzati_traces_name_the_service_from_otel_service_name_or_izzati(tmp_path: Path) -> None:
    # configure() sets a global provider, once per process: each case runs in a child process
    probe = (
        "from opentelemetry import trace\n"
        "from izzati import tracing\n"
        "assert tracing.configure('console')\n"
        "print(trace.get_tracer_provider().resource.attributes['service.name'])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(ROOT)
    named = subprocess.run([PYTHON, "-c", probe], env={**env, "OTEL_SERVICE_NAME": "mine"}, capture_output=True)
    assert named.stdout.decode().strip() == "mine", named.stderr.decode()
    default = subprocess.run([PYTHON, "-c", probe], env=env, capture_output=True)
    assert default.stdout.decode().strip() == "izzati", default.stderr.decode()


def test_spans_name_their_route(spawn: Spawn, tmp_path: Path) -> None:
    """With several routes, the request's span, its callback's and its job's say the route served
    (`izzati.route`), whatever the path the request came in by (`POST /jobs`: the first route)."""
    port = free_tcp_port()
    web_log = tmp_path / "web.jsonl"
    env = {
        "IZZATI_ROUTES": "/first=traced:handle,/second=traced:handle",
        "IZZATI_WORKER": "traced:process",
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "TRACE_LOG": str(web_log),
    }
    spawn([PYTHON, "-m", "app"], env=env)
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "ready")
    assert httpx.post(url + "second", data={"n": "1"}).status_code == 200
    server = wait_for_span(web_log, "POST /second")
    callback = wait_for_span(web_log, "izzati.callback")
    assert server["attributes"]["izzati.route"] == "/second" and callback["attributes"]["izzati.route"] == "/second"
    assert ids(callback)[2] == ids(server)[1]
    submitted = httpx.post(url + "second", data={"n": "2"}, headers={"Prefer": "respond-async"})
    job_id = submitted.json()["id"]
    deadline = time.monotonic() + 20
    while not (jobs := [s for s in spans(web_log) if s["attributes"].get("izzati.job.id") == job_id]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert jobs[0]["attributes"]["izzati.route"] == "/second"
    assert httpx.post(url + "jobs", data={"n": "3"}).status_code == 202
    assert wait_for_span(web_log, "POST /jobs")["attributes"]["izzati.route"] == "/first"
