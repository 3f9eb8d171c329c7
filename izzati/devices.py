"""Devices: which processors a service's server processes run on, and which one this process has.

`IZZATI_DEVICES` names them: `cpu`, a list such as `cuda:0,cuda:1`, or `auto` (every GPU that
`nvidia-smi -L` lists, found without importing a framework; `cpu` when there is none). Each
device gets `IZZATI_WORKERS_PER_DEVICE` server processes. A GPU process has
`CUDA_VISIBLE_DEVICES` set to its GPU's index before anything loads, so a framework inside sees
exactly one GPU, as `cuda:0`: that is the device string `setup(self, device)` gets (`current()`),
while `assigned()` names the physical GPU (`cuda:1`), as the logs and process names do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["CPU", "parse", "detect", "enter", "current", "assigned", "on_device", "of"]

T = TypeVar("T", bound=Callable[..., Any])
_PINNED = "__izzati_device__"

CPU = "cpu"
_GPU = re.compile(r"cuda:(\d+)")
_LISTED = re.compile(r"^GPU (\d+):", re.MULTILINE)

_assigned = CPU


def detect() -> list[str]:
    """The GPUs `nvidia-smi -L` lists, as `cuda:N`; `["cpu"]` without nvidia-smi or GPUs."""
    command = shutil.which("nvidia-smi")
    if command is None:
        return [CPU]
    try:
        listed = subprocess.run([command, "-L"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return [CPU]
    gpus = [f"cuda:{index}" for index in _LISTED.findall(listed)]
    return gpus or [CPU]


def parse(spec: str) -> list[str]:
    """The devices `spec` names (`auto`, `cpu`, or a comma-separated list of `cpu` / `cuda:N`);
    ValueError naming a wrong one."""
    spec = spec.strip()
    if spec == "auto":
        return detect()
    found = [part.strip() for part in spec.split(",") if part.strip()]
    for device in found:
        if device != CPU and not _GPU.fullmatch(device):
            raise ValueError(f"{device!r} is not a device: use auto, cpu, or cuda:N (e.g. cuda:0,cuda:1)")
    if not found:
        raise ValueError("no device named: use auto, cpu, or cuda:N (e.g. cuda:0,cuda:1)")
    if len(set(found)) != len(found):
        raise ValueError(f"{spec!r} names a device twice: use IZZATI_WORKERS_PER_DEVICE for more processes on one")
    return found


def enter(device: str) -> None:
    """Make `device` this process's (first thing in a server process, before anything loads): a
    GPU becomes the only one a framework sees."""
    global _assigned
    _assigned = device
    gpu = _GPU.fullmatch(device)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu.group(1)


def assigned() -> str:
    """The device this process was given, as named in IZZATI_DEVICES (`cuda:1`)."""
    return _assigned


def current() -> str:
    """The device string a framework in this process uses: `cuda:0` on a GPU (the only one it
    sees), `cpu` otherwise. `setup(self, device)` gets this."""
    return "cuda:0" if _GPU.fullmatch(_assigned) else CPU


def on_device(device: str) -> Callable[[T], T]:
    """`@izzati.on_device("cpu")` on a callback (a class with `setup(self, device)`): it is set up
    on the CPU in every server process, a GPU process's included, while the other routes of the
    service use the process's device: one route on the GPU, another on the CPU."""
    if device != CPU:
        raise ValueError(
            f"on_device({device!r}): a route can be put on 'cpu'; GPUs are the processes' (IZZATI_DEVICES)"
        )

    def pin(callback: T) -> T:
        setattr(callback, _PINNED, device)
        return callback

    return pin


def of(callback: Any) -> str:
    """The device string `callback`'s setup gets in this process: its `on_device`, or `current()`."""
    pinned = getattr(callback, _PINNED, None)
    return pinned if isinstance(pinned, str) else current()
