"""The calling convention (`izzati.invoker`): how text, data, q, args and kwargs reach a callback."""

from __future__ import annotations

import asyncio
import functools
import os
from typing import Any

import pytest

from izzati.exceptions import CallbackError
from izzati.invoker import Invoker, describe, encode_json, signature_problem


def plain(text: dict[str, Any], data: list[Any], *extra: Any, **named: Any) -> Any:
    return {"text": text, "data": data, "extra": list(extra), "named": named}


def test_plain_callback_gets_text_data_args_and_kwargs() -> None:
    invoker = Invoker(plain, (1, 2), {"k": "v"})
    assert not invoker.is_async
    assert invoker.call_sync({"a": "b"}, []) == {"text": {"a": "b"}, "data": [], "extra": [1, 2], "named": {"k": "v"}}


def test_queue_goes_first_when_the_first_parameter_is_named_q() -> None:
    def callback(q: Any, text: dict[str, Any], data: list[Any]) -> Any:
        return q

    assert Invoker(callback, queue="the queue").call_sync({}, []) == "the queue"


def test_queue_goes_by_name_when_a_later_parameter_is_q() -> None:
    def callback(text: dict[str, Any], data: list[Any], greeting: str, q: Any = None) -> Any:
        return (greeting, q)

    assert Invoker(callback, ("hi",), queue="the queue").call_sync({}, []) == ("hi", "the queue")


def test_queue_is_not_passed_twice_when_the_user_passes_q() -> None:
    def callback(text: dict[str, Any], data: list[Any], q: Any = None) -> Any:
        return q

    assert Invoker(callback, (), {"q": "mine"}, queue="the queue").call_sync({}, []) == "mine"


def test_queue_first_is_forced_for_background_backends() -> None:
    def callback(queue: Any, text: dict[str, Any], data: list[Any]) -> Any:
        return queue

    assert Invoker(callback, queue="the queue", queue_first=True).call_sync({}, []) == "the queue"


def test_no_queue_parameter_no_queue() -> None:
    def callback(text: dict[str, Any], data: list[Any]) -> Any:
        return "ok"

    assert Invoker(callback, queue="the queue").call_sync({}, []) == "ok"


def test_wrong_signature_is_a_type_error_naming_the_callback_and_the_shape() -> None:
    def one(text: dict[str, Any]) -> None:
        return None

    with pytest.raises(TypeError) as caught:
        Invoker(one, (1,))
    message = str(caught.value)
    assert message.startswith(f"callback {__name__}:test_wrong_signature_is_a_type_error")
    assert "cannot be called as callback(text, data, <arg>)" in message


def test_not_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="must be callable, not int"):
        Invoker(3)  # type: ignore[arg-type]


def test_async_callbacks_are_detected_through_partials_and_objects() -> None:
    async def coro(text: dict[str, Any], data: list[Any], n: int) -> int:
        return n

    class Model:
        async def __call__(self, text: dict[str, Any], data: list[Any]) -> str:
            return "model"

    assert Invoker(functools.partial(coro, n=3)).is_async
    assert Invoker(Model()).is_async
    assert Invoker(functools.partial(coro, n=3)).call_sync({}, []) == 3  # run to completion
    assert asyncio.run(Invoker(Model()).call({}, [], pool=None)) == "model"


def test_call_runs_a_plain_callback_on_the_given_thread_runner() -> None:
    ran: list[str] = []

    class Runner:
        async def _run(self, call: Any) -> Any:
            ran.append("runner")
            return call()

        def run(self, call: Any) -> Any:
            return self._run(call)

    assert asyncio.run(Invoker(plain).call({"a": "1"}, [], pool=Runner()))["text"] == {"a": "1"}
    assert ran == ["runner"]


def test_signature_problem() -> None:
    assert signature_problem(plain, ({}, []), {}, "f(text, data)") is None
    problem = signature_problem(lambda: None, ({}, []), {}, "f(text, data)")
    assert problem is not None and problem.startswith("() cannot be called as f(text, data): ")
    assert signature_problem(print, (1, 2), {}, "f(a, b)") is None  # builtins: not checked, never wrong


def test_encode_json_is_compact_utf8_and_refuses_what_is_not_json() -> None:
    assert (
        encode_json({"name": "élise", "n": [1, 2.5, None, True]}) == '{"name":"élise","n":[1,2.5,null,true]}'.encode()
    )
    with pytest.raises(CallbackError, match="returned a set that cannot be sent as JSON"):
        encode_json({1, 2})
    # NaN and infinity are no JSON numbers: written as null (docs/callback.md), never a 500
    assert encode_json([float("nan"), float("inf"), -float("inf")]) == b"[null,null,null]"


def test_describe() -> None:
    assert describe(plain) == f"{__name__}:plain"
    assert describe(functools.partial(plain)).startswith("functools:")


class Counting:
    """A model: setup() once per process, teardown() at the end."""

    setups = 0

    def setup(self) -> None:
        type(self).setups += 1
        self.pid = os.getpid()

    def teardown(self) -> None:
        self.pid = 0

    def __call__(self, text: dict[str, Any], data: list[Any]) -> int:
        return self.pid


def test_a_class_with_setup_becomes_one_instance_set_up_once_per_process() -> None:
    Counting.setups = 0
    invoker = Invoker(Counting)
    assert isinstance(invoker.callback, Counting) and invoker.needs_setup and not invoker.ready
    invoker.setup()
    invoker.setup()
    assert Counting.setups == 1 and invoker.ready
    assert invoker.call_sync({}, []) == os.getpid()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a forked process (a server worker, a job runner) sets up its own
        ready_before = invoker.ready
        invoker.setup()
        os.write(write, f"{ready_before} {Counting.setups} {invoker.call_sync({}, [])}".encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 100).decode().split() == ["False", "2", str(child)]
    invoker.teardown()
    assert invoker.call_sync({}, []) == 0 and not invoker.ready


def test_plain_callbacks_need_no_setup() -> None:
    invoker = Invoker(plain)
    assert not invoker.needs_setup and invoker.ready
    invoker.setup()  # a no-op
    invoker.teardown()
    assert describe(Counting()) == f"{__name__}:Counting"
