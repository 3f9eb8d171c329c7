"""A multiplexed callback: ten known models `m0`..`m9`, each load and teardown recorded (in memory,
and in the file `MODEL_LOG` names, for a spawned service); a load can be held at a gate."""

from __future__ import annotations

import os
import threading
from typing import Any

import izzati

KNOWN = {f"m{i}" for i in range(10)}


def _note(line: str) -> None:
    path = os.environ.get("MODEL_LOG")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{line}\n".encode())
        finally:
            os.close(fd)


class Weights:
    """A loaded model: its id; `teardown()` records that it was released."""

    def __init__(self, model_id: str, events: list[tuple[str, str]]) -> None:
        self.model_id = model_id
        self.events = events
        self.released = False

    def teardown(self) -> None:
        self.released = True
        self.events.append(("teardown", self.model_id))
        _note(f"teardown {self.model_id} {os.getpid()}")


class Classifier:
    """Answers with the model the request names (`Izzati-Model`), the pid, and whether that model
    was already torn down when the answer was made (it never should be)."""

    def setup(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = 0
        self.attempts: list[str] = []
        self.lock = threading.Lock()

    @izzati.multiplexed(max_models=3)
    def load(self, model_id: str) -> Weights:
        self.attempts.append(model_id)
        if model_id not in KNOWN:
            raise KeyError(model_id)
        self.events.append(("load", model_id))
        _note(f"load {model_id} {os.getpid()}")
        self.gate.wait(30)
        return Weights(model_id, self.events)

    def __call__(self, text: dict[str, Any], data: Any) -> dict[str, Any]:
        with self.lock:
            self.entered += 1
        model = self.load()
        return {"model": model.model_id, "asked": izzati.model_id(), "pid": os.getpid(), "released": model.released}

    def loads(self) -> list[str]:
        return [key for kind, key in self.events if kind == "load"]

    def teardowns(self) -> list[str]:
        return [key for kind, key in self.events if kind == "teardown"]


@izzati.multiplexed(max_models=2)
def tokenizer(model_id: str) -> str:
    """A module-level loader."""
    if model_id not in KNOWN:
        raise KeyError(model_id)
    return f"tokenizer of {model_id}"


def tokenize(text: dict[str, Any], data: Any) -> dict[str, Any]:
    """A plain function callback with a module-level multiplexed loader."""
    return {"tokenizer": tokenizer(), "resident": tokenizer.cache.resident()}


class OneAtATime:
    """Keeps one model (`max_models=1`); a request with `hold=1` waits, its model in hand, until
    `release(model_id)`, then answers whether its model had been torn down meanwhile."""

    def setup(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.gates: dict[str, threading.Event] = {}
        self.inside: dict[str, threading.Event] = {}

    @izzati.multiplexed(max_models=1)
    def load(self, model_id: str) -> Weights:
        self.events.append(("load", model_id))
        return Weights(model_id, self.events)

    def release(self, model_id: str) -> None:
        self.gates.setdefault(model_id, threading.Event()).set()

    def __call__(self, text: dict[str, Any], data: Any) -> dict[str, Any]:
        model = self.load()
        if text.get("hold"):
            self.inside.setdefault(model.model_id, threading.Event()).set()
            self.gates.setdefault(model.model_id, threading.Event()).wait(30)
        self.events.append(("answer", model.model_id))
        return {"model": model.model_id, "released": model.released}
