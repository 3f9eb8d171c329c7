"""examples/iris, served by its documented command: a scikit-learn model trained in setup(), batched."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable

import httpx
from sklearn.datasets import load_iris  # the examples extra: pip install -e '.[examples]'

from tests.examples.serve import batch_sizes, serve
from tests.support.processes import Proc


def test_every_flower_through_http_in_batches(spawn: Callable[..., Proc]) -> None:
    # a longer wait than the example's 5 ms makes batches certain on a loaded machine
    _, url = serve(spawn, "iris", "iris:Classifier", IZZATI_BATCH_WAIT_MS="100")
    iris = load_iris()
    species = [str(n) for n in iris.target_names]

    def ask(i: int) -> str:
        r = httpx.post(url + "/", json={"features": [float(x) for x in iris.data[i]]}, timeout=60)
        assert r.status_code == 200, r.text
        assert set(r.json()["probabilities"]) == set(species)
        answer: str = r.json()["species"]
        return answer

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, range(len(iris.target))))
    right = sum(answer == species[t] for answer, t in zip(answers, iris.target, strict=True))
    assert right / len(answers) > 0.9, f"{right} of {len(answers)} flowers right"
    batches, requests = batch_sizes(url)
    assert requests == len(answers)
    assert batches < requests / 2, f"{requests} requests in {batches} batches"


def test_form_fields_and_bad_features(spawn: Callable[..., Proc]) -> None:
    _, url = serve(spawn, "iris", "iris:Classifier")
    form = {"sepal_length": "5.1", "sepal_width": "3.5", "petal_length": "1.4", "petal_width": "0.2"}
    r = httpx.post(url + "/", data=form)
    assert r.status_code == 200 and r.json()["species"] == "setosa", r.text
    for bad in ({"features": [1, 2, 3]}, {"features": [1, 2, "x", 4]}, {"features": [1, 2, 3, True]}, {"a": 1}):
        r = httpx.post(url + "/", json=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"] == "bad_features", r.text
    r = httpx.post(url + "/", content=b'{"features": [1, 2, 3, NaN]}', headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    # one bad request in a batch fails alone
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        good = pool.submit(httpx.post, url + "/", data=form)
        wrong = pool.submit(httpx.post, url + "/", json={"features": "none"})
        assert good.result().status_code == 200 and wrong.result().status_code == 400
