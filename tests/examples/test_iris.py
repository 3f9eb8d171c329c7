"""examples/iris, served by its documented command: a scikit-learn model trained in setup(), typed, batched."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import httpx
import pytest
from sklearn.datasets import load_iris  # the examples extra: pip install -e '.[examples]'

from tests.examples.serve import batch_sizes, served

FIELDS = ("sepal_length", "sepal_width", "petal_length", "petal_width")


# the first test also waits for the server's start: imports of torch or scikit-learn and setup()
pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # a longer wait than the example's 5 ms makes batches certain on a loaded machine
    with served("iris", "iris:Classifier", tmp_path_factory.mktemp("logs"), IZZATI_BATCH_WAIT_MS="100") as base:
        yield base


def test_every_flower_through_http_in_batches(url: str) -> None:
    # a longer wait than the example's 5 ms makes batches certain on a loaded machine
    iris = load_iris()
    batches_before, requests_before = batch_sizes(url)
    species = [str(n) for n in iris.target_names]

    def ask(i: int) -> str:
        r = httpx.post(url + "/", json=dict(zip(FIELDS, map(float, iris.data[i]), strict=True)), timeout=60)
        assert r.status_code == 200, r.text
        assert set(r.json()["probabilities"]) == set(species)
        answer: str = r.json()["species"]
        return answer

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, range(len(iris.target))))
    right = sum(answer == species[t] for answer, t in zip(answers, iris.target, strict=True))
    assert right / len(answers) > 0.9, f"{right} of {len(answers)} flowers right"
    batches, requests = batch_sizes(url)
    batches, requests = batches - batches_before, requests - requests_before
    assert requests == len(answers)
    assert batches < requests / 2, f"{requests} requests in {batches} batches"


def test_form_fields_and_bad_flowers(url: str) -> None:
    form = {"sepal_length": "5.1", "sepal_width": "3.5", "petal_length": "1.4", "petal_width": "0.2"}
    r = httpx.post(url + "/", data=form)
    assert r.status_code == 200 and r.json()["species"] == "setosa", r.text
    missing = {k: v for k, v in form.items() if k != "petal_width"}
    for bad, field in (
        (missing, "petal_width"),
        ({**form, "sepal_width": "x"}, "sepal_width"),
        ({**form, "petal_length": "-1"}, "petal_length"),
    ):
        for r in (httpx.post(url + "/", data=bad), httpx.post(url + "/", json=bad)):
            assert r.status_code == 422, (bad, r.text)
            body = r.json()
            assert body["error"] == "invalid_input" and [f["loc"][-1] for f in body["fields"]] == [field], body
    # the signature is the API: /openapi.json describes a Flower in and a Prediction out
    schema = httpx.get(url + "/openapi.json").text
    assert all(name in schema for name in (*FIELDS, "probabilities"))
    # one bad request in a batch fails alone
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        good = pool.submit(httpx.post, url + "/", data=form)
        wrong = pool.submit(httpx.post, url + "/", json={**form, "sepal_length": None})
        assert good.result().status_code == 200 and wrong.result().status_code == 422
