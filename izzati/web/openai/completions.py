"""The objects `POST /v1/chat/completions` answers: one `chat.completion`, or a stream of
`chat.completion.chunk` Server-Sent Events ending with `data: [DONE]`."""

from __future__ import annotations

import random
import time
from typing import Any

from ...chat import Usage
from ...invoker import encode_json
from .errors import error_event
from .pieces import Cutter

__all__ = ["ChatFormat", "usage_of"]


def usage_of(usage: Usage | None) -> dict[str, int] | None:
    """A reported `Usage` as OpenAI's `usage` object (None when none was reported)."""
    if usage is None:
        return None
    total = usage.total_tokens
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens, "total_tokens": total}


def _event(value: Any) -> bytes:
    return b"data: " + encode_json(value) + b"\n\n"


class ChatFormat:
    """Writes one answer as a `chat.completion` or as `chat.completion.chunk` events."""

    def __init__(self, model: str, include_usage: bool = False) -> None:
        self.id = f"chatcmpl-{random.getrandbits(96):024x}"
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }

    def start(self) -> bytes:
        """The first event: the assistant's role."""
        return _event(self._chunk({"role": "assistant", "content": ""}))

    def delta(self, text: str) -> bytes:
        """One piece of text."""
        return _event(self._chunk({"content": text}))

    def end(self, cutter: Cutter) -> bytes:
        """The last events: the finish reason, the usage (when asked for and known), `[DONE]`."""
        events = _event(self._chunk({}, cutter.finish_reason))
        usage = usage_of(cutter.usage)
        if self.include_usage and usage is not None:
            events += _event({**self._chunk({}), "choices": [], "usage": usage})
        return events + b"data: [DONE]\n\n"

    def error(self, exc: Exception) -> bytes:
        """The event that ends a stream whose callback failed (the client raises `APIError`)."""
        return _event(error_event(exc))

    def complete(self, cutter: Cutter) -> dict[str, Any]:
        """The whole answer as one `chat.completion`."""
        reply: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": cutter.answer},
                    "finish_reason": cutter.finish_reason,
                    "logprobs": None,
                }
            ],
        }
        usage = usage_of(cutter.usage)
        if usage is not None:
            reply["usage"] = usage
        return reply
