"""A model whose setup takes the device: it notes the device, the physical device izzati
assigned and CUDA_VISIBLE_DEVICES (a line in DEVICE_LOG per setup), and each call answers with them."""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

from izzati import devices, on_device


class Model:
    """setup(device) 'loads onto' the device it is given."""

    def setup(self, device: str) -> None:
        self.seen = {
            "pid": os.getpid(),
            "device": device,
            "assigned": devices.assigned(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "process": multiprocessing.current_process().name,
        }
        path = os.environ.get("DEVICE_LOG")
        if path:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                line = " ".join(str(self.seen[key]) for key in ("pid", "device", "assigned", "cuda_visible_devices"))
                os.write(fd, f"{line}\n".encode())
            finally:
                os.close(fd)

    def __call__(self, text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
        return self.seen


@on_device("cpu")
class CpuModel(Model):
    """The same model, put on the CPU whatever the process's device."""
