"""The contract of a chat callback and an embedding callback, served by the OpenAI-compatible
endpoints (`Backend(chat={"name": callback}, embeddings={"name": callback})`).

A chat callback takes one `ChatRequest` and returns its answer as text pieces:

    def chat(request: ChatRequest) -> Iterator[str]:
        for token in model.generate(request.messages, max_new_tokens=request.max_tokens):
            yield token

- It may be a generator (plain or `async def`), or return a `str` (the whole answer at once).
- Each yielded `str` counts as one token. izzati ends the answer after `max_tokens` pieces
  (`finish_reason: "length"`) and at the first `stop` string (cut before it, `"stop"`), so a
  generator that ignores both still honours them; one that honours them itself ends sooner.
- It may yield a `Usage` at any point (the last one wins) to report token counts: the reply's
  `usage` then says them. Without one there is no `usage`.
- `izzati.cancelled()` turns true, and the generator is closed (`GeneratorExit` at its `yield`),
  when the client hangs up.
- With `@izzati.batched(...)` it takes a `list[ChatRequest]` and returns one answer per request
  (a `str` or a list of pieces); concurrent requests are grouped as for any batch callback.

An embedding callback takes a `list[str]` and returns one vector (a list of floats, or anything
with `tolist()`, e.g. a numpy array) per text. With `@izzati.batched(...)` the texts of
concurrent requests are grouped into one call (`max_size` counts texts).

Either may be an object (or a class) with `setup()`, run once per server process before the
first call, as for any izzati callback. This module imports nothing beyond the standard library.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypedDict

__all__ = ["Message", "ChatRequest", "Usage"]


class Message(TypedDict):
    """One message of a conversation: `role` is "system", "user", "assistant" (or "developer",
    "tool"); `content` is its text (OpenAI's content parts are joined into one string)."""

    role: str
    content: str


@dataclasses.dataclass(frozen=True)
class ChatRequest:
    """What a chat callback is asked: the conversation and the usual sampling parameters.

    Arguments:
        messages: the conversation so far, oldest first (`/v1/responses`' `instructions` come
            first as a "system" message).
        model: the model name the client asked for (one of the names the service serves).
        max_tokens: most pieces in the answer (None: no bound); izzati enforces it.
        temperature, top_p, seed: sampling parameters, as the client sent them (None: not sent).
        stop: strings that end the answer; izzati enforces them.
        extra: the other fields of the request body, as sent (e.g. `response_format`).
    """

    messages: list[Message]
    model: str = ""
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def prompt(self) -> str:
        """The text of the last "user" message ("" when there is none)."""
        for message in reversed(self.messages):
            if message["role"] == "user":
                return message["content"]
        return ""


@dataclasses.dataclass(frozen=True)
class Usage:
    """Token counts a chat callback may yield among its pieces, for the reply's `usage`."""

    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens
