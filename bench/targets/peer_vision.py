"""P4's model and images, the same code in every target (izzati, FastAPI, LitServe in its venv) and
in the ceiling loop: LitServe's parity test (`tests/parity_fastapi/` in its repository) rebuilt.

- the model: torchvision's ResNet-18 with random weights (`weights=None`), in eval mode; the weights
  are seeded (`torch.manual_seed(0)` before it is built), so every process holds the same model and
  the checker can compute each reply;
- the preprocessing: `ResNet18_Weights.DEFAULT.transforms()` (resize 256, centre crop 224,
  normalise; nothing is downloaded);
- the images: like the test's, 224 x 224 RGB noise saved as JPEG by PIL, two of them, made from a
  seeded generator instead of an unseeded one;
- a request: `{"image_data": "<the JPEG in base64>"}`; a reply: `{"output": <class index>}`.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import torch
import torchvision
from PIL import Image

__all__ = ["jpeg", "payload", "model", "preprocess", "decode", "classify", "logits"]

BATCH = 8
WAIT_MS = 10.0


def jpeg(index: int) -> bytes:
    """Image `index` (0 or 1) as JPEG bytes: 224 x 224 RGB noise, as the parity test makes it."""
    noise = np.random.default_rng(index).random((224, 224, 3)) * 255
    out = io.BytesIO()
    Image.fromarray(noise.astype("uint8")).convert("RGB").save(out, format="JPEG")
    return out.getvalue()


def payload(index: int) -> dict[str, str]:
    """The request body of image `index`."""
    return {"image_data": base64.b64encode(jpeg(index)).decode("ascii")}


def model(device: str = "cpu") -> torch.nn.Module:
    """ResNet-18, random weights (seeded: the same in every process), eval mode."""
    torch.manual_seed(0)
    built: torch.nn.Module = torchvision.models.resnet18(weights=None).eval().to(device)
    return built


_TRANSFORMS: Any = None


def preprocess() -> Any:
    """The model's preprocessing: ResNet18_Weights.DEFAULT.transforms()."""
    global _TRANSFORMS
    if _TRANSFORMS is None:
        _TRANSFORMS = torchvision.models.ResNet18_Weights.DEFAULT.transforms()
    return _TRANSFORMS


def decode(image_data: str) -> torch.Tensor:
    """A request's base64 JPEG as the model's input tensor (3 x 224 x 224)."""
    image = Image.open(io.BytesIO(base64.b64decode(image_data))).convert("RGB")
    tensor: torch.Tensor = preprocess()(image)
    return tensor


def logits(net: torch.nn.Module, images: list[torch.Tensor]) -> torch.Tensor:
    """The model's outputs for a batch of decoded images."""
    with torch.inference_mode():
        out: torch.Tensor = net(torch.stack(images))
    return out


def classify(net: torch.nn.Module, images: list[torch.Tensor]) -> list[int]:
    """The class index of each image, one pass of the model over the batch."""
    classes: list[int] = logits(net, images).argmax(dim=1).tolist()
    return classes
