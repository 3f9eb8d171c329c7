"""Callbacks as MCP tools at /mcp, through a real uvicorn server and the official `mcp` SDK's client."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

import izzati
from izzati import Backend
from tests.support.mcpclient import connect

Serve = Callable[..., str]


def shout(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
    """Upper-case every text field."""
    return {key: value.upper() for key, value in text.items()}


def test_tools_are_listed_with_the_openapi_schema_and_the_docstring(serve: Serve) -> None:
    url = serve(Backend(shout, mcp=True).app)
    schema = httpx.get(url + "/openapi.json").json()["paths"]["/"]["post"]["requestBody"]["content"]

    async def main() -> None:
        async with connect(url) as client:
            tools = (await client.list_tools()).tools
            assert [tool.name for tool in tools] == ["shout"]  # no jobs: no izzati_job tool
            assert tools[0].description == "Upper-case every text field."
            assert tools[0].input_schema == schema["application/x-www-form-urlencoded"]["schema"]
            result = await client.call_tool("shout", {"name": "ada"})
            assert not result.is_error and result.structured_content == {"name": "ADA"}
            assert result.content[0].text == '{"name":"ADA"}'  # type: ignore[union-attr]

    anyio.run(main)


def test_a_bad_argument_is_a_tool_error_with_the_validation_details(serve: Serve) -> None:
    url = serve(Backend(shout, mcp=True).app)

    async def main() -> None:
        async with connect(url) as client:
            result = await client.call_tool("shout", {"name": 5})
            assert result.is_error
            assert result.structured_content is not None
            assert result.structured_content["error"] == "validation_error"
            assert result.structured_content["errors"] == [{"loc": ["name"], "msg": "5 is not of type 'string'"}]

    anyio.run(main)


def test_the_api_key_protects_mcp(serve: Serve) -> None:
    url = serve(Backend(shout, mcp=True, api_key="sekret").app)
    refused = httpx.post(url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"

    async def main() -> None:
        async with connect(url, "sekret") as client:
            assert [tool.name for tool in (await client.list_tools()).tools] == ["shout"]
        with pytest.raises(BaseException):  # noqa: B017 - the SDK raises its own group of errors
            async with connect(url, "wrong") as client:
                await client.list_tools()

    anyio.run(main)


def test_progress_becomes_mcp_progress_notifications(serve: Serve) -> None:
    def steps(text: dict[str, Any], data: list[Any]) -> dict[str, str]:
        """Works in three steps."""
        for n in range(3):
            izzati.progress((n + 1) / 3, f"step {n + 1}")
            time.sleep(0.1)
        return {"done": text["what"]}

    url = serve(Backend(steps, jobs=True, mcp=True).app)
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async def main() -> None:
        async with connect(url) as client:
            assert [tool.name for tool in (await client.list_tools()).tools] == ["steps", "izzati_job"]
            result = await client.call_tool("steps", {"what": "it"}, progress_callback=progress)
            assert not result.is_error and result.structured_content == {"done": "it"}

    anyio.run(main)
    assert [message for _, _, message in seen] == ["step 1", "step 2", "step 3"]
    assert [round(done, 2) for done, _, _ in seen] == [0.33, 0.67, 1.0] and seen[0][1] == 1.0


def test_an_mcp_cancel_makes_cancelled_true(serve: Serve) -> None:
    started = threading.Event()
    noticed = threading.Event()

    def patient(text: dict[str, Any], data: list[Any]) -> dict[str, str]:
        started.set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if izzati.cancelled():
                noticed.set()
                return {}
            time.sleep(0.02)
        return {"finished": "yes"}

    url = serve(Backend(patient, jobs=True, mcp=True).app)

    async def main() -> None:
        async with connect(url) as client:
            with anyio.move_on_after(0.5):  # the client gives up: the SDK sends notifications/cancelled
                await client.call_tool("patient", {})
            assert started.is_set()
            await asyncio.to_thread(noticed.wait, 10)

    anyio.run(main)
    assert noticed.is_set()


def test_a_direct_call_is_cancelled_too(serve: Serve) -> None:
    noticed = threading.Event()

    def patient(text: dict[str, Any], data: list[Any]) -> dict[str, str]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not izzati.cancelled():
            time.sleep(0.02)
        noticed.set()
        return {}

    url = serve(Backend(patient, mcp=True).app)

    async def main() -> None:
        async with connect(url) as client:
            with anyio.move_on_after(0.5):
                await client.call_tool("patient", {})
            await asyncio.to_thread(noticed.wait, 10)

    started = time.monotonic()
    anyio.run(main)
    assert noticed.is_set() and time.monotonic() - started < 10


def test_a_long_call_goes_on_as_a_job_the_client_follows(serve: Serve) -> None:
    release = threading.Event()

    def slow(text: dict[str, Any], data: list[Any]) -> dict[str, str]:
        izzati.progress(0.5, "half way")
        assert release.wait(20)
        return {"answer": "42"}

    url = serve(Backend(slow, jobs=True, mcp=True, mcp_wait=0.5).app)

    async def main() -> None:
        async with connect(url) as client:
            first = await client.call_tool("slow", {})
            assert not first.is_error and first.structured_content is not None
            job = first.structured_content["job"]
            assert job["status"] == "running" and job["progress"] == {"fraction": 0.5, "message": "half way"}
            assert httpx.get(url + job["url"]).json()["status"] == "running"  # the same job over HTTP
            release.set()
            for _ in range(200):
                followed = await client.call_tool("izzati_job", {"job_id": job["id"]})
                if "job" not in (followed.structured_content or {}):
                    break
                await asyncio.sleep(0.05)
            assert not followed.is_error and followed.structured_content == {"answer": "42"}
            missing = await client.call_tool("izzati_job", {"job_id": "0" * 32})
            assert missing.is_error and missing.structured_content is not None
            assert missing.structured_content["error"] == "not_found"

    anyio.run(main)


def greet(name: str, times: int = 1) -> dict[str, str]:
    """Greet someone, `times` times."""
    return {"greeting": " ".join([f"hello {name}"] * times)}


def test_a_typed_callback_is_a_tool_with_its_signature_as_schema(serve: Serve) -> None:
    url = serve(Backend(greet, mcp=True).app)
    document = httpx.get(url + "/openapi.json").json()
    body = document["paths"]["/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    model = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]

    async def main() -> None:
        async with connect(url) as client:
            (tool,) = (await client.list_tools()).tools
            assert (tool.name, tool.description) == ("greet", "Greet someone, `times` times.")
            assert tool.input_schema == model
            done = await client.call_tool("greet", {"name": "ada", "times": 2})
            assert done.structured_content == {"greeting": "hello ada hello ada"}
            bad = await client.call_tool("greet", {"times": "many"})
            assert bad.is_error and bad.structured_content is not None
            assert bad.structured_content["error"] == "validation_error"
            problems = {tuple(p["loc"]): p["type"] for p in bad.structured_content["errors"]}
            assert problems == {("name",): "missing", ("times",): "int_parsing"}  # as the route's 422 says

    anyio.run(main)


def test_each_route_is_a_tool_named_after_its_path(serve: Serve) -> None:
    url = serve(Backend({"/": shout, "/greet": greet}, mcp=True).app)

    async def main() -> None:
        async with connect(url) as client:
            assert sorted(tool.name for tool in (await client.list_tools()).tools) == ["greet", "shout"]
            done = await client.call_tool("greet", {"name": "bo"})
            assert done.structured_content == {"greeting": "hello bo"}

    anyio.run(main)
