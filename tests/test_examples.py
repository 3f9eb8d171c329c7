"""The built-in example callback and worker take any JSON value izzati can deliver."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from izzati.examples import echo, print_items
from izzati.exceptions import WorkerStopped
from izzati.queues import MemoryQueue
from izzati.worker import StoppableQueue


def test_print_items_survives_any_json_value(capsys: pytest.CaptureFixture[str]) -> None:
    # a lone surrogate arrives from another producer (JSON allows the escape "\ud800"); printing
    # it as UTF-8 raised UnicodeEncodeError and killed every worker that took the item
    queue = StoppableQueue(MemoryQueue())
    for item in ({"k": "\ud800"}, [1, None, 2.5], "plain", {"k": "é"}):
        queue.put(item)

    def work() -> None:
        with contextlib.suppress(WorkerStopped):  # how a stopped worker's loop ends
            print_items(queue)

    worker = threading.Thread(target=work)
    worker.start()
    deadline = time.monotonic() + 10
    lines: list[str] = []
    while len(lines) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
        lines += capsys.readouterr().out.splitlines()
    queue.stop()
    worker.join(10)
    assert lines == ['{"k": "\\ud800"}', "[1, null, 2.5]", '"plain"', '{"k": "é"}']


def test_echo_puts_text_and_names_the_files() -> None:
    queue = MemoryQueue()
    assert echo({"a": "1"}, [], queue) == {"text": {"a": "1"}, "files": []}
    assert queue.get(timeout=5) == {"a": "1"}
