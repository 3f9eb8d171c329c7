"""Embedding callbacks return what models return: a numpy matrix (one row per text), through the
official `openai` client against a real server, batched or not."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import openai

import izzati
from izzati import Backend

Serve = Callable[..., str]


def lengths(texts: list[str]) -> Any:
    """`model.encode(texts)`: one float32 row per text, as sentence-transformers returns it."""
    return np.array([[float(len(text)), 0.5] for text in texts], dtype=np.float32)


@izzati.batched(max_size=16, max_wait_ms=50)
def batched_lengths(texts: list[str]) -> Any:
    return lengths(texts)


def test_an_embedding_callback_may_return_a_numpy_matrix(serve: Serve) -> None:
    url = serve(Backend(embeddings={"plain": lengths, "batched": batched_lengths}).app)
    ai = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
    for model in ("plain", "batched"):
        reply = ai.embeddings.create(model=model, input=["ab", "abcd"])
        assert [d.embedding for d in reply.data] == [[2.0, 0.5], [4.0, 0.5]], model
        floats = ai.embeddings.create(model=model, input="xyz", encoding_format="float")
        assert floats.data[0].embedding == [3.0, 0.5], model
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda i: ai.embeddings.create(model="batched", input="x" * i), range(1, 5)))
    assert [r.data[0].embedding for r in replies] == [[float(i), 0.5] for i in range(1, 5)]
