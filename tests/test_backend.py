"""`Backend`: the calling convention, responses, errors, concurrency, background mode."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse

from izzati import Backend, MemoryQueue
from tests.conftest import free_tcp_port, wait_for_http

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
