"""Even batches: with more calls waiting than one batch holds, a batch takes its even share of them
when batches cost in proportion to their size, and a full batch when they do not (izzati.batchsizes);
the rule on its own, then through a real server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from izzati import Backend
from izzati.batchsizes import RETRY, BatchSizes
from tests.callbacks import batchmodel
from tests.test_batching import Serve, batch_log, batches

__all__ = ["batch_log"]  # the fixture, used below


def measured(costs: dict[int, float], max_size: int = 8) -> BatchSizes:
    """A BatchSizes that has seen one batch of each size in `costs` take that many seconds."""
    sizes = BatchSizes(max_size)
    for size, seconds in costs.items():
        sizes.record(size, seconds)
    return sizes


def test_no_more_waiting_than_a_batch_holds_all_go() -> None:
    sizes = measured({8: 0.8, 1: 0.1})
    assert [sizes.take(n) for n in (1, 5, 8)] == [1, 5, 8]


def test_a_full_batch_until_a_full_batch_has_been_measured() -> None:
    assert BatchSizes(8).take(17) == 8
    assert measured({6: 0.6}).take(17) == 8


def test_calls_that_cost_in_proportion_are_split_evenly() -> None:
    # 60 ms a call whatever the batch: 25 waiting go 7, 6, 6, 6; 17 go 6, 6, 5; 9 go 5, 4
    sizes = measured({8: 0.48, 7: 0.42, 6: 0.36, 5: 0.30})
    assert [sizes.take(n) for n in (25, 17, 9, 16)] == [7, 6, 5, 8]


def test_a_size_not_measured_is_tried_and_a_flat_cost_then_keeps_full_batches() -> None:
    sizes = measured({8: 0.3})  # a weight-bound model: a batch costs the same whatever its size
    assert sizes.take(17) == 6  # not measured: tried once
    sizes.record(6, 0.3)
    assert sizes.take(17) == 8  # 50 ms a call against 37.5: full batches
    sizes.record(6, 0.3 * 6 / 8 * 1.08)  # 8 % more a call than a full batch: within the tolerance
    assert sizes.take(17) == 8  # but one cheap batch does not outweigh the running mean at once


def test_a_size_passed_over_is_tried_again_after_a_while_and_measured_afresh() -> None:
    sizes = measured({6: 0.6, 8: 0.48})  # one slow batch of 6 (a busy moment)
    assert sizes.take(17) == 8
    for _ in range(RETRY - 2):
        sizes.record(8, 0.48)
    assert sizes.take(17) == 8
    sizes.record(8, 0.48)
    assert sizes.take(17) == 6  # RETRY batches since the last batch of 6
    sizes.record(6, 0.36)  # as cheap a call as a full batch: the stale mean is replaced
    assert sizes.take(17) == 6


def lone_then_six(url: str, log: Path) -> list[int]:
    """One call that holds its batch 1 s, six more sent meanwhile: the sizes of the batches they
    made, in order (each reply checked to be its own)."""
    before = len(batches(log))

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            first = asyncio.create_task(client.post(url, data={"n": "first", "hold": "1"}))
            while len(batches(log)) == before:  # the lone batch is running now
                await asyncio.sleep(0.01)
            rest = [asyncio.create_task(client.post(url, data={"n": str(i)})) for i in range(6)]
            return [await first, *await asyncio.gather(*rest)]

    replies = asyncio.run(send())
    assert [r.json()["n"] for r in replies] == ["first", *(str(i) for i in range(6))]
    return [size for _, _, size in batches(log)[before:]]


def four_at_once(url: str, log: Path) -> list[int]:
    """Four calls sent at once (a full batch, whose cost is then known): the batches' sizes."""
    before = len(batches(log))

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(*(client.post(url, data={"n": str(i)}) for i in range(4)))

    assert [r.status_code for r in asyncio.run(send())] == [200] * 4
    return [size for _, _, size in batches(log)[before:]]


@pytest.fixture
def one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # a batch's numeric library uses every core by default: one batch at a time
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def test_a_backlog_of_calls_costing_in_proportion_goes_in_even_batches(
    serve: Serve, batch_log: Path, one_at_a_time: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCH_ITEM_CPU_SECONDS", "0.1")  # 0.1 s of CPU a call, whatever the batch
    # and 0.3 s asleep a batch: time a batch waits off the CPU is not its cost (by the clock, a call
    # in a batch of 3 would cost 14 % more than in one of 4)
    monkeypatch.setenv("BATCH_SECONDS", "0.3")
    url = serve(Backend(batchmodel.predict, access_log=False).app) + "/"
    assert four_at_once(url, batch_log) == [4]
    # six waiting, batches of at most 4: two of 3, not 4 and 2
    assert lone_then_six(url, batch_log) == [1, 3, 3]
    assert lone_then_six(url, batch_log) == [1, 3, 3]


def test_a_backlog_of_calls_costing_a_batch_each_goes_in_full_batches(
    serve: Serve, batch_log: Path, one_at_a_time: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCH_CPU_SECONDS", "0.3")  # 0.3 s of CPU a batch, whatever its size
    url = serve(Backend(batchmodel.predict, access_log=False).app) + "/"
    assert four_at_once(url, batch_log) == [4]
    assert lone_then_six(url, batch_log) == [1, 3, 3]  # a batch of 3 not measured yet: tried
    assert lone_then_six(url, batch_log) == [1, 4, 2]  # it cost as much as 4: full batches
