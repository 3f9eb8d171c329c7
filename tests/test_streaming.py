"""Streamed replies through a real uvicorn server: NDJSON, Server-Sent Events, raw bytes, hang-ups."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from izzati import Backend, cancelled
from izzati.jobs.service import JobService
from tests.support.jobs import body_bytes

Client = Callable[..., httpx.Client]


def test_items_arrive_as_they_are_made_as_ndjson(client_for: Client) -> None:
    first_read = threading.Event()
    finished = threading.Event()

    def tokens(text: dict[str, Any], data: list[Any]) -> Iterator[dict[str, Any]]:
        yield {"token": "Hello", "n": 0}
        assert first_read.wait(10)  # the client has the first item while this generator still runs
        for n, token in enumerate([",", " world"], 1):
            yield {"token": token, "n": n}
        finished.set()

    client = client_for(Backend(tokens).app)
    with client.stream("POST", "/", data={"prompt": "hi"}) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "application/x-ndjson"
        lines = reply.iter_lines()
        assert json.loads(next(lines)) == {"token": "Hello", "n": 0}
        assert not finished.is_set()
        first_read.set()
        rest = [json.loads(line) for line in lines if line]
    assert [item["token"] for item in rest] == [",", " world"]
    assert finished.is_set()


def test_server_sent_events_and_async_generators(client_for: Client) -> None:
    async def tokens(text: dict[str, Any], data: list[Any]) -> AsyncIterator[Any]:
        for token in ["a", "b", "c"]:
            await asyncio.sleep(0.01)
            yield {"token": token}
        yield "done"

    client = client_for(Backend(tokens).app)
    reply = client.post("/", headers={"Accept": "text/event-stream"})
    assert reply.headers["content-type"] == "text/event-stream"
    assert reply.text == 'data: {"token":"a"}\n\ndata: {"token":"b"}\n\ndata: {"token":"c"}\n\ndata: "done"\n\n'
    ndjson = client.post("/")
    assert ndjson.text.splitlines() == ['{"token":"a"}', '{"token":"b"}', '{"token":"c"}', '"done"']


def test_bytes_items_are_raw_chunks(client_for: Client) -> None:
    def chunks(text: dict[str, Any], data: list[Any]) -> Iterator[bytes]:
        for n in range(3):
            yield f"part {n};".encode()

    reply = client_for(Backend(chunks).app).post("/")
    assert reply.headers["content-type"] == "application/octet-stream"
    assert reply.content == b"part 0;part 1;part 2;"


def test_a_client_that_hangs_up_stops_the_generator(client_for: Client) -> None:
    produced: list[int] = []
    saw_cancel = threading.Event()
    closed = threading.Event()

    def forever(text: dict[str, Any], data: list[Any]) -> Iterator[dict[str, int]]:
        try:
            n = 0
            while True:
                if cancelled():
                    saw_cancel.set()
                produced.append(n)
                yield {"n": n}
                n += 1
                time.sleep(0.01)
        finally:
            closed.set()  # GeneratorExit at the yield: the generator was closed

    client = client_for(Backend(forever).app)
    with client.stream("POST", "/") as reply:
        lines = reply.iter_lines()
        assert json.loads(next(lines)) == {"n": 0}
    # the connection is gone (the stream context closed it)
    assert closed.wait(10), "the generator was closed"
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count  # and nothing more is made for nobody
    assert count < 200


def test_a_slow_reader_holds_the_generator_back(client_for: Client) -> None:
    produced: list[int] = []
    chunk = b"x" * (1024 * 1024)

    def big(text: dict[str, Any], data: list[Any]) -> Iterator[bytes]:
        for n in range(1024):  # 1 GiB if it ran ahead of its reader
            produced.append(n)
            yield chunk

    client = client_for(Backend(big).app)
    with client.stream("POST", "/") as reply:
        stream = reply.iter_raw(65536)
        next(stream)
        time.sleep(1.0)  # the reader pauses: the server must not buffer the stream meanwhile
        ahead = len(produced)
    assert ahead <= 64, f"{ahead} MiB produced for a reader that took 64 KiB"


def test_a_generator_that_raises_before_its_first_item_is_a_json_500(client_for: Client) -> None:
    def broken(text: dict[str, Any], data: list[Any]) -> Iterator[int]:
        raise ValueError("no model")
        yield 1  # a generator all the same

    reply = client_for(Backend(broken).app).post("/")
    assert reply.status_code == 500
    assert reply.json() == {"error": "callback_failed", "detail": "the callback raised ValueError"}


def test_a_streamed_job_keeps_the_list_of_its_items(tmp_path: Any) -> None:
    def tokens(text: dict[str, Any], data: list[Any]) -> Iterator[str]:
        yield from ["to", "ken", "s"]

    jobs = JobService.local(tmp_path / "jobs")
    job_id = jobs.submit({}, [])["id"]
    jobs.queue.get(timeout=5)
    from izzati.invoker import Invoker

    jobs.runner(Invoker(tokens)).run_one(job_id)
    meta, body = jobs.result(job_id)
    assert meta["media_type"] == "application/json" and json.loads(body_bytes(body)) == ["to", "ken", "s"]


def test_frontend_stream_and_izzati_send_stream(serve: Callable[..., str]) -> None:
    import subprocess
    import sys

    from izzati import Frontend

    def tokens(text: dict[str, Any], data: list[Any]) -> Iterator[dict[str, Any]]:
        for n in range(3):
            yield {"n": n, "name": text.get("name")}

    url = serve(Backend(tokens).app) + "/"
    assert list(Frontend(url).stream({"name": "ada"})) == [{"n": n, "name": "ada"} for n in range(3)]
    plain = serve(Backend(lambda text, data: {"one": 1}).app) + "/"
    assert list(Frontend(plain).stream()) == [{"one": 1}]  # a plain reply is one item
    command = [sys.executable, "-m", "izzati.cli", "send", url, "name=bob", "--stream"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [json.dumps({"n": n, "name": "bob"}) for n in range(3)]


def _hang_up_after(url: str, seconds: float) -> None:
    with contextlib.suppress(httpx.ReadTimeout):
        httpx.post(url, data={"a": "1"}, timeout=seconds)  # the client gives up and closes


def test_a_plain_callback_sees_cancelled_when_its_client_hangs_up(serve: Callable[..., str]) -> None:
    saw: list[str] = []
    done = threading.Event()

    def patient(text: dict[str, Any], data: list[Any]) -> dict[str, str]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if cancelled():
                saw.append("cancelled")
                break
            time.sleep(0.01)
        done.set()
        return {"late": "nobody reads this"}

    url = serve(Backend(patient).app) + "/"
    _hang_up_after(url, 0.3)
    assert done.wait(10) and saw == ["cancelled"]


def test_an_async_callback_is_cancelled_when_its_client_hangs_up(serve: Callable[..., str]) -> None:
    outcome: list[str] = []

    async def slow(text: dict[str, Any], data: list[Any]) -> dict[str, str]:
        try:
            await asyncio.sleep(20)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        outcome.append("finished")
        return {}

    url = serve(Backend(slow).app) + "/"
    _hang_up_after(url, 0.3)
    deadline = time.monotonic() + 10
    while not outcome and time.monotonic() < deadline:
        time.sleep(0.02)
    assert outcome == ["cancelled"]


def _sse(text: str) -> list[tuple[str, str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        events.append((fields["id"], fields["event"], json.loads(fields["data"])))
    return events


def test_job_events_stream_status_progress_items_and_result_and_resume(client_for: Client, tmp_path: Any) -> None:
    from izzati import progress
    from izzati.invoker import Invoker

    release = threading.Event()

    def tokens(text: dict[str, Any], data: list[Any]) -> Iterator[str]:
        progress(0.5, "halfway")
        assert release.wait(10)
        yield from ["to", "ken", "s"]

    jobs = JobService.local(tmp_path / "jobs")
    runner = jobs.runner(Invoker(tokens))
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        client = client_for(Backend(tokens, job_service=jobs).app)
        job = client.post("/jobs", data={"prompt": "hi"}).json()["id"]
        with client.stream("GET", f"/jobs/{job}/events") as reply:
            assert reply.headers["content-type"].startswith("text/event-stream")
            seen = ""
            lines = reply.iter_text()
            while "event: progress" not in seen:
                seen += next(lines)  # the events arrive while the job runs
            release.set()
            seen += "".join(lines)
        events = _sse(seen)
        assert [kind for _, kind, _ in events] == [
            "queued",
            "running",
            "progress",
            "item",
            "item",
            "item",
            "result",
            "done",
        ]
        assert [data for _, kind, data in events if kind == "item"] == ["to", "ken", "s"]
        assert events[6][2] == {"json": ["to", "ken", "s"]}  # the result of a streamed job: its items
        assert events[-1][2]["status"] == "done"
        # resumable: after the running event, the rest and nothing twice
        again = client.get(f"/jobs/{job}/events", headers={"Last-Event-ID": events[1][0]})
        assert _sse(again.text) == events[2:]
        assert client.get(f"/jobs/{'0' * 32}/events").status_code == 404
    finally:
        runner.stop()
        thread.join(10)


def test_cancelling_a_streamed_job_closes_its_generator_and_writes_no_item_after(
    client_for: Client, tmp_path: Any
) -> None:
    from izzati.invoker import Invoker

    made: list[int] = []
    closed = threading.Event()

    def endless(text: dict[str, Any], data: list[Any]) -> Iterator[int]:
        try:
            n = 0
            while True:  # never checks cancelled(): only the runner can stop it
                made.append(n)
                yield n
                n += 1
                time.sleep(0.005)
        finally:
            closed.set()

    jobs = JobService.local(tmp_path / "jobs")
    runner = jobs.runner(Invoker(endless))
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        client = client_for(Backend(endless, job_service=jobs).app)
        job = client.post("/jobs", data={}).json()["id"]
        deadline = time.monotonic() + 20
        while len(made) < 5:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert client.delete(f"/jobs/{job}").json()["status"] == "cancelled"
        assert closed.wait(10), f"the generator runs on: {len(made)} items"  # closed: it makes no more
        events = _sse(client.get(f"/jobs/{job}/events").text)
        kinds = [kind for _, kind, _ in events]
        assert kinds[-1] == "cancelled" and "item" not in kinds[kinds.index("cancelled") :], kinds
        assert client.get(f"/jobs/{job}").json()["status"] == "cancelled"
    finally:
        runner.stop()


@pytest.mark.parametrize("events", [False, True])
def test_an_item_that_is_not_json_ends_the_stream_after_the_items_before_it_with_an_error(
    client_for: Client, caplog: pytest.LogCaptureFixture, events: bool
) -> None:
    def mixed(text: dict[str, Any], data: list[Any]) -> Iterator[Any]:
        yield from [1, 2, object(), 3]  # made at once: one batch

    client = client_for(Backend(mixed).app)
    headers = {"Accept": "text/event-stream"} if events else {}
    with caplog.at_level(logging.INFO):
        reply = client.post("/", data={}, headers=headers)
    assert reply.status_code == 200
    if events:
        blocks = reply.text.strip().split("\n\n")
        assert blocks[:2] == ["data: 1", "data: 2"] and blocks[2].startswith("event: error\ndata: ")
        error = json.loads(blocks[2].split("data: ", 1)[1])
        assert len(blocks) == 3
    else:
        lines = reply.text.splitlines()
        assert lines[:2] == ["1", "2"] and len(lines) == 3
        error = json.loads(lines[2])
    assert error["error"] == "callback_failed" and "object" in error["detail"]
    assert "Exception in ASGI application" not in caplog.text
    assert "a streamed item cannot be sent" in caplog.text
