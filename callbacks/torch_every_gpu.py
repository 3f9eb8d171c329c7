"""A torch model served on every GPU of the machine: one server process per GPU (or more, with
IZZATI_WORKERS_PER_DEVICE), each loading the model once onto the GPU izzati gives it.

    IZZATI_DEVICES=auto IZZATI_CALLBACK=torch_every_gpu:Model IZZATI_CALLBACK_PATH=callbacks python -m app
    curl -F 'values=[1, 2, 3, 4]' http://127.0.0.1:5000/

(scripts/serve-on-every-gpu runs the first line.) Each GPU process has CUDA_VISIBLE_DEVICES set
to its GPU, so torch sees that GPU alone, as `cuda:0`: the device `setup` gets. Without a GPU
(`auto` finds none) it serves on the CPU.
"""

from __future__ import annotations

import json
import os
from typing import Any


class Model:
    """A small linear model: 4 numbers in, 2 out, computed on this process's device."""

    def setup(self, device: str) -> None:
        import torch  # imported here: only the server processes load it

        torch.manual_seed(0)  # the same weights in every process
        self.device = device
        self.model = torch.nn.Linear(4, 2).to(device).eval()
        self.torch = torch

    def __call__(self, text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
        values = json.loads(text.get("values", "[0, 0, 0, 0]"))
        with self.torch.inference_mode():
            out = self.model(self.torch.tensor([values], dtype=self.torch.float32, device=self.device))
        return {
            "output": out[0].tolist(),
            "device": self.device,
            "gpu_name": self.torch.cuda.get_device_name(0) if self.device.startswith("cuda") else None,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "pid": os.getpid(),
        }
