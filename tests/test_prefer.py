"""`Prefer` (RFC 7240) read exactly, through a real server with a job runner (`izzati.web.prefer`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from izzati import Backend
from izzati.invoker import Invoker
from izzati.jobs.service import JobService


def _echo(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
    return {"echo": text}


@pytest.fixture
def client(client_for: Callable[..., httpx.Client], tmp_path: Path) -> Iterator[httpx.Client]:
    jobs = JobService.local(tmp_path / "jobs")
    runner = jobs.runner(Invoker(_echo))
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    yield client_for(Backend(_echo, job_service=jobs).app)
    runner.stop()
    thread.join(10)


@pytest.mark.parametrize(
    "prefer",
    [
        "respond-asyncx",
        "x-respond-async",
        'handling="respond-async"',
        "foo; respond-async",  # a parameter of another preference
    ],
)
def test_a_preference_that_only_contains_respond_async_is_not_a_job(client: httpx.Client, prefer: str) -> None:
    r = client.post("/", data={"a": "1"}, headers={"Prefer": prefer})
    assert (r.status_code, r.json()) == (200, {"echo": {"a": "1"}}), r.text


@pytest.mark.parametrize(
    "prefer",
    [
        "respond-async",
        "RESPOND-ASYNC",
        "handling=lenient, respond-async",
        "respond-async; x=1",
        "handling=strict ,  respond-async",
    ],
)
def test_respond_async_anywhere_in_the_list_makes_a_job(client: httpx.Client, prefer: str) -> None:
    r = client.post("/", data={"a": "1"}, headers={"Prefer": prefer})
    assert r.status_code == 202 and r.headers["preference-applied"] == "respond-async", r.text


@pytest.mark.parametrize(
    "lines",
    [
        [("Prefer", "wait=10"), ("Prefer", "respond-async")],
        [("Prefer", "respond-async"), ("Prefer", "wait=10")],
        [("Prefer", "respond-async, wait=10")],
        [("Prefer", 'respond-async, wait="10"')],
    ],
)
def test_preferences_on_several_lines_combine(client: httpx.Client, lines: list[tuple[str, str]]) -> None:
    r = client.post("/", data={"a": "1"}, headers=lines)
    assert r.status_code == 200 and r.headers["preference-applied"] == "wait=10", r.text
    assert r.json() == {"echo": {"a": "1"}}


def test_the_first_of_a_repeated_preference_counts(client: httpx.Client) -> None:
    r = client.post("/", data={"a": "1"}, headers=[("Prefer", "respond-async, wait=0"), ("Prefer", "wait=10")])
    assert r.status_code == 202 and r.headers["preference-applied"] == "respond-async", r.text


def test_wait_0_answers_202_even_for_a_job_that_has_already_ended(client: httpx.Client) -> None:
    # the same idempotency key gives back the job of the first request, which has ended by the
    # second: the client asked to wait for nothing, so it gets the job, not its result
    key = {"Idempotency-Key": "ended-before-the-look"}
    first = client.post("/", data={"a": "1"}, headers={"Prefer": "respond-async, wait=10", **key})
    assert first.status_code == 200, first.text
    again = client.post("/", data={"a": "1"}, headers={"Prefer": "respond-async, wait=0", **key})
    assert again.status_code == 202 and again.headers["preference-applied"] == "respond-async", again.text
    assert again.json()["status"] == "done"


@pytest.mark.parametrize("prefer", ["respond-async", "respond-async, wait=5", None])
def test_with_jobs_off_a_job_request_is_answered_now_and_says_jobs_are_off(
    client_for: Callable[..., httpx.Client], prefer: str | None
) -> None:
    client = client_for(Backend(_echo).app)  # a script's Backend: jobs off
    headers = {"Prefer": prefer} if prefer else {}
    r = client.post("/", data={"a": "1"}, headers=headers)
    assert r.status_code == 200 and r.json() == {"echo": {"a": "1"}}  # the preference is ignored (RFC 7240)
    assert "Preference-Applied" not in r.headers
    # ... and the reply says why, so a client that asked for a job learns that none was made
    assert r.headers.get("Izzati-Jobs") == ("off" if prefer else None)
