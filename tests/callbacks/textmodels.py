"""A chat model with setup() and an embedding function, for IZZATI_CHAT / IZZATI_EMBEDDINGS tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

from izzati import ChatRequest, Usage


class TinyLM:
    """Answers with the last user message reversed, one word a piece; loads once per process."""

    def __init__(self) -> None:
        self.loaded_in: int | None = None
        self.device = ""

    def setup(self, device: str) -> None:
        self.loaded_in, self.device = os.getpid(), device

    def __call__(self, request: ChatRequest) -> Iterator[str | Usage]:
        assert self.loaded_in == os.getpid(), "called before setup() in this process"
        assert self.device == "cpu", f"set up on {self.device!r}"
        words = request.prompt.split()[::-1]
        for word in words:
            yield word + " "
        yield Usage(prompt_tokens=len(words), completion_tokens=len(words))


def lengths(texts: list[str]) -> list[list[float]]:
    """One vector per text: its length and its number of words."""
    return [[float(len(text)), float(len(text.split()))] for text in texts]
