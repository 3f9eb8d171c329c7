"""`Backend`: the calling convention, responses, errors, concurrency, background mode."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse

from izzati import Backend, MemoryQueue
from izzati.jobs.service import JobService
from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc
from tests.support.redis_server import RedisServer

Client = Callable[..., httpx.Client]


@pytest.mark.parametrize(
    "value",
    [{"a": 1}, [1, "two", None], "text", 42, 3.5, True, None, {"unicode": "ü✓"}, (1, 2)],
)
def test_json_values_are_json_with_exact_content_type(client_for: Client, value: Any) -> None:
    r = client_for(Backend(lambda text, data: value).app).post("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == (list(value) if isinstance(value, tuple) else value)


def test_bytes_are_sent_as_octet_stream(client_for: Client) -> None:
    r = client_for(Backend(lambda text, data: b"\x00raw").app).post("/")
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.content == b"\x00raw"


def test_response_passes_through(client_for: Client) -> None:
    r = client_for(Backend(lambda text, data: PlainTextResponse("hi", status_code=201)).app).post("/")
    assert (r.status_code, r.text) == (201, "hi")


def test_unserialisable_return_is_500_json(client_for: Client) -> None:
    client = client_for(Backend(lambda text, data: {"x": object()}).app)
    r = client.post("/")
    assert r.status_code == 500
    assert r.json()["error"] == "callback_failed"
    assert "cannot be sent as JSON" in r.json()["detail"]


def test_raising_callback_is_500_without_traceback_and_server_survives(client_for: Client) -> None:
    calls = []

    def callback(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
        calls.append(text)
        if text.get("fail"):
            raise RuntimeError("secret detail")
        return {"ok": True}

    client = client_for(Backend(callback).app)
    r = client.post("/", data={"fail": "1"})
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"error": "callback_failed", "detail": "the callback raised RuntimeError"}
    assert "secret" not in r.text and "Traceback" not in r.text
    assert client.post("/", data={"x": "1"}).json() == {"ok": True}


def test_debug_puts_traceback_in_500(client_for: Client) -> None:
    def callback(text: dict[str, Any], data: list[Any]) -> None:
        raise ValueError("visible")

    r = client_for(Backend(callback, debug=True).app).post("/")
    assert r.status_code == 500
    assert "visible" in r.json()["detail"]
    assert "Traceback" in r.json()["traceback"]


def test_args_and_kwargs_follow_text_and_data(client_for: Client) -> None:
    def callback(text: dict[str, Any], data: list[Any], a: int, b: int, *, c: str) -> list[Any]:
        return [a, b, c]

    r = client_for(Backend(callback, args=(1, 2), kwargs={"c": "three"}).app).post("/")
    assert r.json() == [1, 2, "three"]


def test_async_callback_is_awaited(client_for: Client) -> None:
    async def callback(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"async": text}

    assert client_for(Backend(callback).app).post("/", data={"k": "v"}).json() == {"async": {"k": "v"}}


def test_slow_sync_callback_does_not_block_others(client_for: Client) -> None:
    release = threading.Event()

    def callback(text: dict[str, Any], data: list[Any]) -> str:
        if text.get("slow"):
            release.wait(10)
            return "slow"
        return "fast"

    client = client_for(Backend(callback).app)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(client.post, "/", data={"slow": "1"})
        time.sleep(0.2)
        # the slow callback holds its thread; other requests are served meanwhile
        assert client.post("/", data={"x": "1"}, timeout=5).json() == "fast"
        assert not slow.done()
        release.set()
        assert slow.result(10).json() == "slow"


@pytest.mark.parametrize(
    "callback",
    [lambda: None, lambda text: None, lambda text, data, extra: None],
    ids=["no-args", "text-only", "missing-extra"],
)
def test_wrong_signature_is_type_error_at_construction(callback: Callable[..., Any]) -> None:
    with pytest.raises(TypeError, match="cannot be called as callback"):
        Backend(callback)


def test_not_callable_is_type_error() -> None:
    with pytest.raises(TypeError, match="must be callable"):
        Backend("not a function")  # type: ignore[arg-type]


def test_background_signature_needs_q_first() -> None:
    with pytest.raises(TypeError, match=r"callback\(q, text, data\)"):
        Backend(lambda text, data: None, background=True)


def test_queue_convention_by_parameter_name(client_for: Client) -> None:
    queue = MemoryQueue()

    def first(q: Any, text: dict[str, Any], data: list[Any]) -> str:
        q.put(("first", text["n"]))
        return "ok"

    def later(text: dict[str, Any], data: list[Any], q: Any) -> str:
        q.put(("later", text["n"]))
        return "ok"

    def none(text: dict[str, Any], data: list[Any]) -> str:
        return "none"

    for callback in (first, later, none):
        client_for(Backend(callback, queue=queue).app).post("/", data={"n": "1"})
    assert [queue.get(timeout=5), queue.get(timeout=5)] == [("first", "1"), ("later", "1")]
    assert queue.empty()


def test_health_405_404_are_json(client_for: Client) -> None:
    client = client_for(Backend(lambda text, data: None).app)
    assert client.get("/health").json() == {"status": "ok"}
    r = client.get("/")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.json()["error"] == "method_not_allowed"
    r = client.put("/")
    assert r.status_code == 405
    r = client.get("/nowhere")
    assert (r.status_code, r.json()["error"]) == (404, "not_found")


def test_openapi_describes_post_root(client_for: Client) -> None:
    client = client_for(Backend(lambda text, data: None).app)
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/"]["post"]
    assert set(post["requestBody"]["content"]) == {
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "application/json",
    }
    assert {"200", "400", "413", "415", "500"} <= set(post["responses"])
    assert "/jobs" not in schema["paths"]  # jobs are off here
    with_jobs = client_for(Backend(lambda text, data: None, job_service=JobService.local()).app)
    jobs_schema = with_jobs.get("/openapi.json").json()["paths"]
    assert jobs_schema["/jobs"]["post"]["responses"]["202"]
    assert {"/jobs/{job_id}", "/jobs/{job_id}/result"} <= set(jobs_schema)
    assert client.get("/docs").status_code == 200


def test_app_is_mountable_and_takes_middleware(client_for: Client) -> None:
    backend = Backend(lambda text, data: {"mounted": text})
    backend.app.add_middleware(CORSMiddleware, allow_origins=["http://example.test"])
    outer = FastAPI()
    outer.mount("/api", backend.app)
    client = client_for(outer)
    r = client.post("/api/", data={"a": "b"}, headers={"origin": "http://example.test"})
    assert r.json() == {"mounted": {"a": "b"}}
    assert r.headers["access-control-allow-origin"] == "http://example.test"


def test_background_mode_runs_server_in_a_process() -> None:
    def callback(q: Any, text: dict[str, Any], data: list[Any]) -> dict[str, str]:
        q.put(text["name"])
        return {"status": "OK"}

    port = free_tcp_port()
    result = Backend(callback, background=True).run(host="127.0.0.1", port=port, log_level="warning")
    assert result is not None
    p, q = result
    try:
        assert p.is_alive()
        wait_for_http(f"http://127.0.0.1:{port}/health")
        assert httpx.post(f"http://127.0.0.1:{port}/", data={"name": "zoe"}).json() == {"status": "OK"}
        assert q.get(timeout=5) == "zoe"
    finally:
        p.terminate()
        p.join(10)
    assert not p.is_alive()


def test_run_takes_use_reloader_positionally_like_1_2_3() -> None:
    port = free_tcp_port()
    result = Backend(lambda q, text, data: "ok", background=True).run("127.0.0.1", port, False, log_level="warning")
    assert result is not None
    p, _ = result
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health")
        assert httpx.post(f"http://127.0.0.1:{port}/").json() == "ok"
    finally:
        p.terminate()
        p.join(10)


def test_library_run_logs_one_access_line_per_request(spawn: Callable[..., Proc], tmp_path: Path) -> None:
    port = free_tcp_port()
    script = tmp_path / "serve.py"
    script.write_text(
        "from izzati import Backend\n"
        "def cb(text, data):\n    return {'set': {1}} if text.get('bad') else 'ok'\n"
        f"Backend(cb).run(host='127.0.0.1', port={port})\n"
    )
    proc = spawn([PYTHON, str(script)], cwd=tmp_path)
    wait_for_http(f"http://127.0.0.1:{port}/health", proc=proc.popen)
    httpx.post(f"http://127.0.0.1:{port}/", headers={"x-request-id": "lib-1"})
    r = httpx.post(f"http://127.0.0.1:{port}/", data={"bad": "1"})
    assert r.status_code == 500
    out = proc.wait_output(lambda out: "request_id=lib-1" in out and "cannot be sent as JSON" in out)
    assert "method=POST path=/ status=200" in out


def test_unexpected_failures_on_the_fast_path_are_json(client_for: Client, redis_proc: RedisServer) -> None:
    from izzati import RedisQueue

    def callback(text: dict[str, Any], data: list[Any], q: Any) -> str:
        q.put(text)
        return "queued"

    queue = RedisQueue(redis_proc.url, name="outage", connect_timeout=1)
    jobs = JobService.local()
    jobs.queue = RedisQueue(redis_proc.url, name="outage:jobs", connect_timeout=1)
    client = client_for(Backend(callback, queue=queue, job_service=jobs).app)
    assert client.post("/", data={"a": "1"}).json() == "queued"
    redis_proc.stop()
    try:
        for headers in ({}, {"prefer": "respond-async"}):
            r = client.post("/", data={"a": "1"}, headers=headers)
            assert r.status_code == 503, r.text
            assert r.headers["content-type"] == "application/json"
            assert r.json()["error"] == "service_unavailable"
        # a job that could not be queued leaves nothing behind
        assert [p.name for p in jobs.store.root.iterdir()] == ["keys"]  # type: ignore[attr-defined]
        # a broken job store is still a JSON answer
        shutil.rmtree(jobs.store.root)  # type: ignore[attr-defined]
        jobs.store.root.write_text("not a folder")  # type: ignore[attr-defined]
        redis_proc.start()
        r = client.post("/", data={"a": "1"}, headers={"prefer": "respond-async"})
        assert r.status_code == 500
        assert r.json() == {"error": "internal_error", "detail": "the server failed to handle the request"}
    finally:
        queue.close()


@pytest.mark.parametrize("where", ["field", "header", "prefer"])
def test_a_malformed_callback_url_is_400_wherever_it_is_sent(client_for: Client, where: str) -> None:
    client = client_for(Backend(lambda text, data: text, job_service=JobService.local()).app)
    bad = "http://["
    if where == "field":
        r = client.post("/jobs", data={"callback_url": bad})
    elif where == "header":
        r = client.post("/jobs", data={"a": "1"}, headers={"Callback-URL": bad})
    else:
        r = client.post("/", data={"callback_url": bad}, headers={"Prefer": "respond-async"})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"] == "bad_request" and "callback_url" in r.json()["detail"]
