"""examples/resnet, served by its documented command: ResNet-18 (random weights) over uploaded
images and LitServe's base64 JSON, batched; its answers are the network's, computed here too."""

from __future__ import annotations

import base64
import concurrent.futures
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from tests.examples.serve import batch_sizes, served

# the first test also waits for the server's start: imports of torch or scikit-learn and setup()
pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # a longer wait than the example's 10 ms makes batches certain on a loaded machine
    with served("resnet", "resnet:Classifier", tmp_path_factory.mktemp("logs"), IZZATI_BATCH_WAIT_MS="200") as base:
        yield base


def jpeg(seed: int) -> bytes:
    """A 224x224 JPEG of noise, as LitServe's parity benchmark makes its images."""
    pixels = (np.random.default_rng(seed).random((224, 224, 3)) * 255).astype("uint8")
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG")
    return out.getvalue()


def expected(images: list[bytes]) -> list[tuple[int, float]]:
    """The class and its probability the example's network gives each image, computed here."""
    torch.manual_seed(0)
    weights = torchvision.models.ResNet18_Weights.DEFAULT
    model = torchvision.models.resnet18(weights=None).eval()
    batch = torch.stack([weights.transforms()(Image.open(io.BytesIO(b)).convert("RGB")) for b in images])
    with torch.inference_mode():
        probability, classes = model(batch).softmax(dim=1).max(dim=1)
    return list(zip(classes.tolist(), probability.tolist(), strict=True))


def same(answers: list[tuple[int, float]], want: list[tuple[int, float]]) -> bool:
    """The same classes, and probabilities equal to float32's precision over a batch."""
    return [k for k, _ in answers] == [k for k, _ in want] and all(
        abs(p - q) < 1e-6 for (_, p), (_, q) in zip(answers, want, strict=True)
    )


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    return [jpeg(seed) for seed in range(6)]


def test_files_and_base64_json_answer_the_networks_class_in_batches(url: str, images: list[bytes]) -> None:
    want = expected(images)
    batches_before, requests_before = batch_sizes(url)
    # random weights give every noise image one class: its probability tells the images apart
    assert min(abs(p - q) for i, (_, p) in enumerate(want) for _, q in want[:i]) > 1e-5

    def answer(reply: httpx.Response) -> tuple[int, float]:
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert isinstance(body["label"], str)
        return body["output"], body["probability"]

    def upload(i: int) -> tuple[int, float]:
        return answer(httpx.post(url + "/", files={"image": (f"{i}.jpg", images[i], "image/jpeg")}, timeout=120))

    def as_json(i: int) -> tuple[int, float]:
        return answer(httpx.post(url + "/", json={"image_data": base64.b64encode(images[i]).decode()}, timeout=120))

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        uploaded = pool.map(upload, range(len(images)))
        sent = pool.map(as_json, range(len(images)))
        assert same(list(uploaded), want)
        assert same(list(sent), want)
    batches, requests = batch_sizes(url)
    batches, requests = batches - batches_before, requests - requests_before
    assert requests == 2 * len(images) and batches < requests, f"{requests} requests in {batches} batches"


def test_what_is_not_an_image_fails_alone(url: str, images: list[bytes]) -> None:
    bad = [
        ({"files": {"image": ("x.jpg", Path(__file__).read_bytes(), "image/jpeg")}}, "bad_image"),
        ({"json": {"image_data": "not base64!"}}, "bad_image"),
        ({"json": {"image_data": base64.b64encode(b"GIF89a but no more").decode()}}, "bad_image"),
        ({"json": {"image_data": 42}}, "no_image"),
        ({"data": {"other": "field"}}, "no_image"),
    ]
    with concurrent.futures.ThreadPoolExecutor(len(bad) + 1) as pool:
        good = pool.submit(httpx.post, url + "/", files={"image": ("ok.jpg", images[0])}, timeout=120)
        replies = list(pool.map(lambda kw: httpx.post(url + "/", timeout=120, **kw[0]), bad))
        assert good.result().status_code == 200
        assert good.result().json()["output"] == expected(images[:1])[0][0]
    for (_, code), r in zip(bad, replies, strict=True):
        assert r.status_code == 400 and r.json()["error"] == code, r.text
