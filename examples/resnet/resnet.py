"""An image classifier: torchvision's ResNet-18 (random weights: nothing is downloaded), batched.

Serve it (from this directory, after `pip install -r requirements.txt`):

    izzati run resnet:Classifier

Ask it with an uploaded image file, or with the JSON of LitServe's parity test (the image's
bytes in base64 as `image_data`):

    curl -F image=@cat.jpg http://127.0.0.1:5020/
    curl -H 'Content-Type: application/json' -d "{\"image_data\": \"$(base64 -w0 cat.jpg)\"}" http://127.0.0.1:5020/

Both answer `{"output": <class index>, "label": <its ImageNet name>, "probability": <the network's>}`
(`output` as LitServe's parity server answers). With random weights the
class means nothing: swap `weights=None` for `ResNet18_Weights.DEFAULT` to classify for real
(torchvision downloads the weights once, 45 MB). Concurrent requests are decoded in parallel and
run through the network as one batch of up to 8, the first waiting at most 10 ms (LitServe's
parity settings). `setup` places the model on the process's device.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import izzati
from izzati.exceptions import BadRequest


class Classifier:
    """ResNet-18 over 224x224 crops of the images sent; one forward pass per batch."""

    def setup(self, device: str) -> None:
        # device: "cpu", or "cuda:0" in a GPU process (IZZATI_DEVICES; each sees its own GPU as cuda:0)
        import torch
        import torchvision

        torch.manual_seed(0)  # the same random weights in every process
        weights = torchvision.models.ResNet18_Weights.DEFAULT  # its transforms and labels; no download
        self.torch = torch
        self.device = device
        self.preprocess = weights.transforms()
        self.labels: list[str] = list(weights.meta["categories"])
        self.model = torchvision.models.resnet18(weights=None).eval().to(device)
        self.decoders = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="decode")

    def image_bytes(self, text: dict[str, Any], files: list[izzati.UploadedFile]) -> bytes:
        """The image of one request: its first uploaded file, else `image_data` (base64)."""
        if files:
            return files[0].read()
        encoded = text.get("image_data")
        if not isinstance(encoded, str) or not encoded:
            raise BadRequest("send an image file, or 'image_data': the image in base64", code="no_image")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("'image_data' is not base64", code="bad_image") from None

    def tensor(self, data: bytes) -> Any:
        """The network's input for one image: decoded, resized, cropped, normalized."""
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as image:
                return self.preprocess(image.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError):
            raise BadRequest("not an image Pillow can read (JPEG, PNG, WebP, ...)", code="bad_image") from None

    def decode(self, text: dict[str, Any], files: list[izzati.UploadedFile]) -> Any:
        """One request's tensor, or the BadRequest that fails that request alone."""
        try:
            return self.tensor(self.image_bytes(text, files))
        except BadRequest as exc:
            return exc

    @izzati.batched(max_size=8, max_wait_ms=10)
    def __call__(self, batch: list[tuple[dict[str, Any], list[izzati.UploadedFile]]]) -> list[Any]:
        decoded = list(self.decoders.map(lambda item: self.decode(*item), batch))
        good = [x for x in decoded if not isinstance(x, BadRequest)]
        top: list[tuple[float, int]] = []
        if good:
            with self.torch.inference_mode():
                probabilities = self.model(self.torch.stack(good).to(self.device)).softmax(dim=1)
                top = list(zip(*(t.tolist() for t in probabilities.max(dim=1)), strict=True))
        answers = iter({"output": k, "label": self.labels[k], "probability": p} for p, k in top)
        return [x if isinstance(x, BadRequest) else next(answers) for x in decoded]

    def teardown(self) -> None:
        self.decoders.shutdown()
