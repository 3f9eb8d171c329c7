"""DELETE /jobs/<id> of a job that already ended cancels nothing and says so (issue 21 §9)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from izzati import Backend
from tests.callbacks import typed

Client = Callable[..., httpx.Client]


def _backend(callback: Callable[..., object], **options: object) -> Backend:
    return Backend(callback, access_log=False, metrics=False, **options)  # type: ignore[arg-type]


def test_deleting_a_finished_job_cancels_nothing_and_says_so(client_for: Client) -> None:
    client = client_for(_backend(typed.classify, jobs=True).app)
    accepted = client.post("/jobs", data={"text": "dog"})
    assert accepted.status_code == 202, accepted.text
    url = accepted.headers["Location"]
    deadline = time.monotonic() + 60
    while client.get(url).json()["status"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    deleted = client.delete(url)
    assert deleted.status_code == 200  # not 202 Accepted: there was nothing left to cancel
    assert deleted.json()["status"] == "done"
    assert client.get(f"{url}/result").json() == {"label": "D", "score": 0.5}
