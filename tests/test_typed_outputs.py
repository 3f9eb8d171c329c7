"""Typed results and the one JSON encoder: what models return becomes JSON, a result that does
not match its annotation is a 500 `invalid_result`, streams and batches check each item, jobs
validate at submission."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

import httpx
import pytest

from izzati import Backend
from tests.callbacks import typed

Client = Callable[..., httpx.Client]


def _backend(callback: Callable[..., object], **options: object) -> Backend:
    return Backend(callback, access_log=False, metrics=False, **options)  # type: ignore[arg-type]


def test_what_models_return_becomes_json_for_typed_and_classic_callbacks(client_for: Client) -> None:
    client = client_for(_backend(typed.ml).app)
    reply = client.post("/", data={"n": "3"})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "int64": 3,
        "float32": 0.5,
        "array": [0, 1, 2],
        "when": "2026-01-02T03:04:05+00:00",
        "day": "2026-01-02",
        "id": "00000000-0000-0000-0000-000000000003",
        "price": "1.10",
        "color": "blue",
        "point": {"x": 1.0, "y": 2.0},
        "label": {"label": "a", "score": 1.0},
        "nan": None,
    }
    classic = client_for(_backend(typed.ml_classic).app)
    assert classic.post("/", data={"a": "1", "b": "2"}).json() == {"n": 2, "scores": [0.25, 0.75]}


def test_a_typed_result_is_validated_and_a_mismatch_is_a_logged_500(
    client_for: Client, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_for(_backend(typed.wrong_result).app)
    assert client.post("/", data={"n": "0"}).json() == {"label": "x", "score": 1.0}
    with caplog.at_level(logging.ERROR, logger="izzati"):
        reply = client.post("/", data={"n": "1"})
    assert reply.status_code == 500
    body = reply.json()
    assert body["error"] == "invalid_result"
    assert body["detail"].startswith("the callback's result does not match its return type Label: score: ")
    assert any("invalid_result" in r.getMessage() or "does not match" in r.getMessage() for r in caplog.records)


def test_a_typed_stream_checks_each_item(client_for: Client) -> None:
    client = client_for(_backend(typed.tokens).app)
    lines = client.post("/", data={"text": "t", "count": "2"}).text.splitlines()
    assert [json.loads(line) for line in lines] == [{"index": 0, "token": "t0"}, {"index": 1, "token": "t1"}]
    events = client.post("/", data={"text": "t", "count": "1"}, headers={"Accept": "text/event-stream"})
    assert events.headers["content-type"].startswith("text/event-stream")
    assert 'data: {"index":0,"token":"t0"}' in events.text
    # a first item that does not match Token: a 500 that names the field, no stream
    broken = client.post("/", data={"text": "bad", "count": "0"})
    assert broken.status_code == 500
    assert broken.json()["detail"].startswith("the callback's streamed item does not match its return type Token: ")
    asynchronous = client_for(_backend(typed.atokens).app)
    assert asynchronous.post("/", json={"text": "a"}).text.splitlines() == [
        '{"index":0,"token":"a"}',
        '{"index":1,"token":"a"}',
    ]


def test_a_typed_batch_gives_each_request_its_own_422_or_result(serve: Callable[..., str]) -> None:
    url = serve(_backend(typed.double_batch).app) + "/"

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            bodies = [{"n": "1"}, {"n": "x"}, {"n": "13"}, {"n": "4"}, {"n": "7"}]
            return list(await asyncio.gather(*(client.post(url, data=body) for body in bodies)))

    one, invalid, wrong, four, seven = asyncio.run(send())
    assert seven.status_code == 400 and seven.json()["detail"] == "seven is not doubled here"
    assert one.json() == {"doubled": 2} and four.json() == {"doubled": 8}
    assert invalid.status_code == 422 and invalid.json()["fields"][0]["loc"] == ["n"]
    assert wrong.status_code == 500 and wrong.json()["error"] == "invalid_result"


def test_a_job_is_validated_at_submission_and_its_result_follows_the_type(client_for: Client) -> None:
    backend = _backend(typed.classify, jobs=True)  # its jobs run in the process that serves it
    client = client_for(backend.app)
    refused = client.post("/jobs", data={"top": "two"})
    assert refused.status_code == 422
    assert [f["loc"] for f in refused.json()["fields"]] == [["text"], ["top"]]
    also = client.post("/", data={"top": "x"}, headers={"Prefer": "respond-async"})
    assert also.status_code == 422
    accepted = client.post("/jobs", data={"text": "dog", "top": "2"})
    assert accepted.status_code == 202, accepted.text
    url = accepted.headers["Location"]
    deadline = time.monotonic() + 60
    while (status := client.get(url).json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status["status"] == "done", status
    assert client.get(f"{url}/result").json() == {"label": "DO", "score": 0.5}
