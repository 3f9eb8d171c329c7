"""An iris classifier: scikit-learn, trained in setup() on the dataset scikit-learn ships, typed, batched.

Serve it (from this directory, after `pip install -r requirements.txt`):

    izzati run iris:Classifier

Ask it, with JSON or with form fields (the four measurements of a flower, in cm):

    curl -H 'Content-Type: application/json' \
         -d '{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}' http://127.0.0.1:5020/
    curl -F sepal_length=6.7 -F sepal_width=3.0 -F petal_length=5.2 -F petal_width=2.3 http://127.0.0.1:5020/

The signature is the API: each request is validated as a `Flower` (a missing or negative
measurement is a 422 naming the field, for that request alone) and answered with a `Prediction`;
/openapi.json and the try page at / describe both. Concurrent requests are grouped into one
`predict_proba` call over a matrix (up to 32 rows, the first waiting at most 5 ms for company).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

import izzati


class Flower(BaseModel):
    """The four measurements of an iris flower, in centimetres."""

    sepal_length: float = Field(gt=0, lt=100)
    sepal_width: float = Field(gt=0, lt=100)
    petal_length: float = Field(gt=0, lt=100)
    petal_width: float = Field(gt=0, lt=100)


class Prediction(BaseModel):
    """The species the model finds most likely, and its probability for each species."""

    species: str
    probabilities: dict[str, float]


class Classifier:
    """Logistic regression over the 150 iris flowers of scikit-learn's bundled data set."""

    def setup(self) -> None:
        # imported here, not at the top: `izzati run` imports this module in processes that never
        # predict (the supervisor), and they need not load scikit-learn
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression

        iris = load_iris()
        self.species = [str(name) for name in iris.target_names]
        self.model = LogisticRegression(max_iter=1000).fit(iris.data, iris.target)

    @izzati.batched(max_size=32, max_wait_ms=5)
    def __call__(self, batch: list[Flower]) -> list[Prediction]:
        rows = [[f.sepal_length, f.sepal_width, f.petal_length, f.petal_width] for f in batch]
        return [
            Prediction(
                species=self.species[int(p.argmax())],
                probabilities={name: round(float(x), 4) for name, x in zip(self.species, p, strict=True)},
            )
            for p in self.model.predict_proba(rows)
        ]
