"""An iris classifier: scikit-learn, trained in setup() on the dataset scikit-learn ships, batched.

Serve it (from this directory, after `pip install -r requirements.txt`):

    izzati run iris:Classifier

Ask it, with JSON or with form fields:

    curl -H 'Content-Type: application/json' -d '{"features": [5.1, 3.5, 1.4, 0.2]}' http://127.0.0.1:5020/
    curl -F sepal_length=6.7 -F sepal_width=3.0 -F petal_length=5.2 -F petal_width=2.3 http://127.0.0.1:5020/

Concurrent requests are grouped into one `predict_proba` call over a matrix (up to 32 rows, the
first waiting at most 5 ms for company); a request with bad features fails alone with a 400.
"""

from __future__ import annotations

import math
from typing import Any

import izzati
from izzati.exceptions import BadRequest

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def features(text: dict[str, Any]) -> list[float]:
    """The four measurements (cm) of one request: `features` as a JSON list, or one field each."""
    raw = text["features"] if "features" in text else [text.get(name) for name in FEATURES]
    if not isinstance(raw, list) or len(raw) != len(FEATURES) or any(v is None for v in raw):
        raise BadRequest(
            f"send 'features': a list of {len(FEATURES)} numbers ({', '.join(FEATURES)}), or each as a field",
            code="bad_features",
        )
    try:
        values = [float(v) for v in raw if not isinstance(v, bool | dict | list)]
    except (TypeError, ValueError):
        values = []
    if len(values) != len(FEATURES) or not all(math.isfinite(v) for v in values):
        raise BadRequest(f"the features must be {len(FEATURES)} finite numbers, got {raw!r:.200}", code="bad_features")
    return values


class Classifier:
    """Logistic regression over the 150 iris flowers; answers the species and its probabilities."""

    def setup(self) -> None:
        # imported here, not at the top: `izzati run` imports this module in the supervisor too,
        # which never predicts
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression

        iris = load_iris()
        self.species = [str(name) for name in iris.target_names]
        self.model = LogisticRegression(max_iter=1000).fit(iris.data, iris.target)

    @izzati.batched(max_size=32, max_wait_ms=5)
    def __call__(self, batch: list[tuple[dict[str, Any], list[izzati.UploadedFile]]]) -> list[Any]:
        results: list[Any] = []
        rows: list[list[float]] = []
        for text, _files in batch:
            try:
                rows.append(features(text))
                results.append(None)  # filled in below, from the batch's prediction
            except BadRequest as exc:
                results.append(exc)  # this request alone gets the 400
        if rows:
            probabilities = iter(self.model.predict_proba(rows))
            for i, result in enumerate(results):
                if result is None:
                    p = next(probabilities)
                    results[i] = {
                        "species": self.species[int(p.argmax())],
                        "probabilities": {name: round(float(x), 4) for name, x in zip(self.species, p, strict=True)},
                    }
        return results
