"""Dynamic batching through real servers: concurrent requests grouped, the max_wait bound, per-item
errors, wrong-length results, async and setup() callbacks, jobs batched, workers=N."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from izzati import Backend, batched, threads
from izzati.batching import BatchPolicy, resolve_policy
from tests.callbacks import batchmodel
from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc

Serve = Callable[..., str]


def batches(log: Path) -> list[tuple[int, str, int]]:
    """(pid, process name, size) of each batch the callback ran."""
    rows = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return [(int(pid), name, int(size)) for pid, name, size in rows]


async def post_all(url: str, bodies: list[dict[str, str]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(*(client.post(url, data=body) for body in bodies))


@pytest.fixture
def batch_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "batches.log"
    monkeypatch.setenv("BATCH_LOG", str(log))
    return log


def test_concurrent_requests_are_grouped_and_each_gets_its_own_result(serve: Serve, batch_log: Path) -> None:
    url = serve(Backend(batchmodel.predict, access_log=False).app) + "/"
    replies = asyncio.run(post_all(url, [{"n": str(i)} for i in range(16)]))
    assert [r.status_code for r in replies] == [200] * 16
    assert [r.json()["n"] for r in replies] == [str(i) for i in range(16)]  # in order, none mixed up
    sizes = [size for _, _, size in batches(batch_log)]
    assert sum(sizes) == 16 and max(sizes) <= 4  # max_size=4 from @batched
    assert len(sizes) < 16  # grouped: 16 concurrent requests with a 200 ms window make few batches
    assert {r.json()["size"] for r in replies} == set(sizes)


def _a_lone_call_then_twelve(
    serve: Serve, batch_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[Any]:
    """One call, then twelve sent while its batch (of one) runs 1 s: each batch's (start, end, size),
    in order of start; every reply checked to be its own."""
    # the first batch runs 1 s: time for the next twelve to arrive, even on a loaded machine
    monkeypatch.setenv("BATCH_SECONDS", "1.0")
    monkeypatch.setenv("BATCH_SPANS", str(tmp_path / "spans.log"))
    url = serve(Backend(batchmodel.predict, batch_wait_ms=20, access_log=False).app) + "/"

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            first = asyncio.create_task(client.post(url, data={"n": "first"}))
            while not batch_log.exists():  # the first batch (of one) is running now (it notes its start)
                await asyncio.sleep(0.01)
            rest = [asyncio.create_task(client.post(url, data={"n": str(i)})) for i in range(12)]
            return [await first, *await asyncio.gather(*rest)]

    replies = asyncio.run(send())
    assert [r.json()["n"] for r in replies] == ["first", *(str(i) for i in range(12))]
    return sorted(tuple(map(float, line.split())) for line in (tmp_path / "spans.log").read_text().splitlines())


def test_one_batch_runs_at_a_time_and_the_next_fills_meanwhile(
    serve: Serve, batch_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a batch's numeric library uses every core by default: one batch at a time keeps them busy
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    spans = _a_lone_call_then_twelve(serve, batch_log, tmp_path, monkeypatch)
    for (_, end, _), (start, _, _) in zip(spans, spans[1:], strict=False):
        assert start >= end  # never two batches on the model at once
    # the twelve that came while the first ran waited for it, and went as full batches
    assert [int(size) for _, _, size in spans] == [1, 4, 4, 4]


@pytest.mark.skipif(threads.usable_cores() < 2, reason="one core: one batch at a time keeps it busy")
def test_batches_of_one_thread_each_run_side_by_side_on_idle_cores(
    serve: Serve, batch_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OMP_NUM_THREADS=1: a batch keeps one core busy, so as many run at once as there are cores
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    spans = _a_lone_call_then_twelve(serve, batch_log, tmp_path, monkeypatch)
    assert [int(size) for _, _, size in spans] == [1, 4, 4, 4]
    # the first full batch did not wait for the lone one: it started while that one ran
    assert spans[1][0] < spans[0][1]
    most = max(sum(start <= at < end for start, end, _ in spans) for at, _, _ in spans)
    assert most == min(threads.usable_cores(), 4)  # never more at once than the cores (4 batches here)


def batch_starts(spans: Path) -> list[float]:
    """When each batch reached the callback (time.monotonic() of the server, here this process)."""
    return [float(line.split()[0]) for line in spans.read_text().splitlines()]


@pytest.fixture
def spans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "spans.log"
    monkeypatch.setenv("BATCH_SPANS", str(path))
    return path


# The holds below are measured from the moment the client sends to the moment the batch reaches
# the callback (noted by the callback itself): the reply's way back, the access log and the
# client's own scheduling are left out, so the bounds can be tight and still hold on a loaded machine.


def test_a_full_batch_goes_at_once_without_waiting_for_max_wait(serve: Serve, batch_log: Path, spans: Path) -> None:
    url = serve(Backend(batchmodel.predict, batch_wait_ms=5000, access_log=False).app) + "/"
    sent = time.monotonic()
    replies = asyncio.run(post_all(url, [{"n": str(i)} for i in range(4)]))
    assert [r.json()["size"] for r in replies] == [4, 4, 4, 4]
    [started] = batch_starts(spans)
    assert started - sent < 1.25  # full at 4: sent then, not after any part of the 5 s window


def test_a_lone_request_is_held_at_most_max_wait(serve: Serve, batch_log: Path, spans: Path) -> None:
    url = serve(Backend(batchmodel.predict, batch_wait_ms=1000, access_log=False).app) + "/"
    with httpx.Client(timeout=30) as client:
        client.get(url + "health")  # the connection is open before the clock starts
        sent = time.monotonic()
        reply = client.post(url, data={"n": "alone"})
    assert reply.json()["size"] == 1
    [started] = batch_starts(spans)
    # waited its 1 s window for company, then went alone: not sooner, and not twice as long
    assert 0.99 <= started - sent < 2.0


def test_an_item_error_fails_only_that_items_request(serve: Serve, batch_log: Path) -> None:
    url = serve(Backend(batchmodel.predict, access_log=False).app) + "/"
    bodies = [{"n": "0"}, {"n": "1", "fail": "value"}, {"n": "2", "fail": "bad_request"}, {"n": "3"}]
    replies = asyncio.run(post_all(url, bodies))
    assert [size for _, _, size in batches(batch_log)] == [4]  # one batch held all four
    assert replies[0].status_code == 200 and replies[0].json()["n"] == "0"
    assert replies[3].status_code == 200 and replies[3].json()["n"] == "3"
    assert replies[1].status_code == 500
    assert replies[1].json() == {"error": "callback_failed", "detail": "the callback raised ValueError"}
    assert replies[2].status_code == 400
    assert replies[2].json() == {"error": "not_a_number", "detail": "item 2 is not a number"}


def test_a_batch_callback_that_raises_fails_every_request_in_the_batch(serve: Serve, batch_log: Path) -> None:
    url = serve(Backend(batchmodel.predict, access_log=False).app) + "/"
    replies = asyncio.run(post_all(url, [{"n": "0"}, {"n": "1", "raise": "1"}, {"n": "2"}, {"n": "3"}]))
    assert [r.status_code for r in replies] == [500] * 4
    assert all(r.json()["error"] == "callback_failed" for r in replies)


def test_a_result_list_of_the_wrong_length_is_a_500_naming_it(serve: Serve, batch_log: Path) -> None:
    url = serve(Backend(batchmodel.predict, access_log=False).app) + "/"
    replies = asyncio.run(post_all(url, [{"n": "0", "short": "1"}, {"n": "1"}, {"n": "2"}]))
    assert [r.status_code for r in replies] == [500] * 3
    detail = replies[0].json()["detail"]
    assert "batchmodel:predict returned 1 results for 3 items" in detail


def test_a_batch_callback_that_returns_no_list_is_a_500_naming_it(serve: Serve) -> None:
    @batched(max_size=2, max_wait_ms=50)
    def scalar(batch: list[Any]) -> int:
        return 1

    url = serve(Backend(scalar, access_log=False).app) + "/"
    reply = httpx.post(url, data={"n": "0"})
    assert reply.status_code == 500 and "returned a int" in reply.json()["detail"]


def test_async_batch_callbacks_and_files(serve: Serve, batch_log: Path) -> None:
    url = serve(Backend(batchmodel.apredict, access_log=False).app) + "/"

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            calls = [client.post(url, data={"n": str(i)}, files={"f": ("a.bin", b"x" * (i + 1))}) for i in range(8)]
            return await asyncio.gather(*calls)

    replies = asyncio.run(send())
    assert [r.json()["files"] for r in replies] == [[i + 1] for i in range(8)]
    assert max(size for _, _, size in batches(batch_log)) > 1


def test_keyword_batches_an_undecorated_callback_and_overrides_the_decorator(batch_log: Path) -> None:
    assert resolve_policy(batchmodel.undecorated, None, None) is None
    assert resolve_policy(batchmodel.undecorated, 3, None) == BatchPolicy(3, 5.0)
    assert resolve_policy(batchmodel.predict, None, 10) == BatchPolicy(4, 10)
    assert Backend(batchmodel.Model).invoker.batch == BatchPolicy(8, 300)


def test_bad_batch_settings_and_signatures_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="max_size must be an integer of at least 1"):
        batched(max_size=0)
    with pytest.raises(ValueError, match="max_wait_ms must be 0 or more"):
        batched(max_wait_ms=float("nan"))
    with pytest.raises(ValueError, match="max_concurrent must be None or an integer of at least 1"):
        batched(max_concurrent=0)

    @batched()
    def two(text: dict[str, Any], data: list[Any]) -> list[Any]:
        return []

    with pytest.raises(TypeError, match=r"cannot be called as callback\(batch\)"):
        Backend(two)


def start_app(spawn: Callable[..., Proc], tmp_path: Path, **env: str) -> str:
    port = free_tcp_port()
    full = {"IZZATI_HOST": "127.0.0.1", "IZZATI_PORT": str(port), "BATCH_LOG": str(tmp_path / "batches.log"), **env}
    proc = spawn([PYTHON, "-m", "app"], env=full)
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "health", proc=proc.popen)
    deadline = time.monotonic() + 30
    while httpx.get(url + "ready").status_code != 200:
        assert time.monotonic() < deadline, "not ready"
        time.sleep(0.05)
    return url


def test_setting_batches_a_setup_model_per_server_process(spawn: Callable[..., Proc], tmp_path: Path) -> None:
    url = start_app(spawn, tmp_path, IZZATI_CALLBACK="batchmodel:Model", IZZATI_WORKERS="2", IZZATI_BATCH_SIZE="3")
    replies = asyncio.run(post_all(url, [{"n": str(i)} for i in range(24)]))
    assert [r.json()["n"] for r in replies] == [str(i) for i in range(24)]
    rows = [row for row in batches(tmp_path / "batches.log")]
    assert sum(size for _, _, size in rows) == 24 and max(size for _, _, size in rows) <= 3  # the setting wins
    for reply in replies:  # each batch ran in the process that set the model up
        assert reply.json()["pid"] in {pid for pid, _, _ in rows}


def test_jobs_are_taken_in_batches_by_the_job_runner(spawn: Callable[..., Proc], tmp_path: Path) -> None:
    url = start_app(spawn, tmp_path, IZZATI_CALLBACK="batchmodel:Model", IZZATI_BATCH_WAIT_MS="500")
    bodies = [{"n": str(i)} for i in range(6)] + [{"n": "6", "fail": "value"}]
    submitted = asyncio.run(post_all(url + "jobs", bodies))
    ids = [r.json()["id"] for r in submitted]
    assert all(r.status_code == 202 for r in submitted)
    finals: list[dict[str, Any]] = []
    for job_id in ids:
        deadline = time.monotonic() + 30
        while (status := httpx.get(f"{url}jobs/{job_id}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        finals.append(status)
    assert [f["status"] for f in finals] == ["done"] * 6 + ["failed"]
    assert finals[6]["error"]["error"] == "callback_failed"  # only the failing item's job failed
    results = [httpx.get(f"{url}jobs/{job_id}/result").json() for job_id in ids[:6]]
    assert [r["n"] for r in results] == [str(i) for i in range(6)]
    runner = [size for _, name, size in batches(tmp_path / "batches.log") if name == "izzati-server-0/izzati-jobs"]
    assert sum(runner) == 7 and max(runner) > 1  # the runner took several queued jobs at once


def test_a_raising_batch_logs_one_bounded_traceback_for_the_batch(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    @batched(max_size=4, max_wait_ms=60_000)  # goes when full: the 4 requests are one batch
    def huge_error(batch: list[Any]) -> list[Any]:
        raise ValueError("x" * 1_000_000)

    url = serve(Backend(huge_error, access_log=False).app) + "/"
    with caplog.at_level(logging.INFO):
        replies = asyncio.run(post_all(url, [{"n": str(i)} for i in range(4)]))
    assert [r.status_code for r in replies] == [500] * 4
    assert all(r.json() == {"error": "callback_failed", "detail": "the callback raised ValueError"} for r in replies)
    assert caplog.text.count("Traceback (most recent call last)") == 1, caplog.text[:2000]
    assert "raise ValueError" in caplog.text and "batch of 4" in caplog.text
    assert len(caplog.text) < 40_000
