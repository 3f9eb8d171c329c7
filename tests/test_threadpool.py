"""The callback thread pool: every call's outcome reaches its own awaiting request, also when
many calls end before the event loop runs (their outcomes share one wake-up of the loop)."""

from __future__ import annotations

import asyncio
import functools
import threading
import time

from izzati.web.threadpool import CallbackPool


def test_many_calls_ending_together_each_get_their_own_outcome() -> None:
    pool = CallbackPool(8)
    gate = threading.Barrier(8)

    def call(i: int) -> int:
        if i < 8:
            gate.wait(timeout=10)  # the first eight end at once, while the loop is busy
        if i % 7 == 3:
            raise ValueError(f"call {i}")
        return i * i

    async def main() -> list[int | str]:
        futures = [pool.run(functools.partial(call, i)) for i in range(400)]
        time.sleep(0.2)  # the loop is blocked: outcomes pile up for one drain
        outcomes: list[int | str] = []
        for future in futures:
            try:
                outcomes.append(await asyncio.wait_for(future, 10))
            except ValueError as exc:
                outcomes.append(str(exc))
        return outcomes

    try:
        outcomes = asyncio.run(main())
    finally:
        pool.shutdown()
    assert outcomes == [f"call {i}" if i % 7 == 3 else i * i for i in range(400)]


def test_outcomes_keep_arriving_after_many_rounds() -> None:
    # a wake-up lost between two drains would leave a later call waiting forever
    pool = CallbackPool(3)

    async def main() -> int:
        total = 0
        for _ in range(300):
            calls = [pool.run(functools.partial(int, i)) for i in range(5)]
            results = await asyncio.wait_for(asyncio.gather(*calls), 10)
            total += sum(results)
        return total

    try:
        assert asyncio.run(main()) == 300 * 10
    finally:
        pool.shutdown()


def test_a_call_waits_for_a_free_thread_beyond_the_limit() -> None:
    pool = CallbackPool(2)
    running = 0
    most = 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    async def main() -> None:
        await asyncio.wait_for(asyncio.gather(*(pool.run(call) for _ in range(10))), 10)

    try:
        asyncio.run(main())
    finally:
        pool.shutdown()
    assert most == 2


def test_each_event_loop_gets_its_own_outcomes() -> None:
    pool = CallbackPool(4)

    async def one(n: int) -> int:
        result: int = await asyncio.wait_for(pool.run(lambda: n + 1), 10)
        return result

    try:
        assert [asyncio.run(one(n)) for n in range(3)] == [1, 2, 3]
    finally:
        pool.shutdown()
