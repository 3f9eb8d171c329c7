"""The objects `POST /v1/responses` answers (text in, text out): one `response`, or its stream of
events `response.created`, `response.in_progress`, `response.output_item.added`,
`response.content_part.added`, `response.output_text.delta`..., `response.output_text.done`,
`response.content_part.done`, `response.output_item.done`, then `response.completed` (or
`response.incomplete` when `max_output_tokens` cut the answer; or `error` then `response.failed`
when the callback fails after the first event)."""

from __future__ import annotations

import random
import time
from typing import Any

from ...chat import ChatRequest
from ...invoker import encode_json
from .errors import error_event
from .pieces import Cutter

__all__ = ["ResponseFormat"]


class ResponseFormat:
    """Writes one answer as a `response` object or as its stream of events."""

    def __init__(self, request: ChatRequest, instructions: str | None) -> None:
        self.id = f"resp_{random.getrandbits(128):032x}"
        self.item_id = f"msg_{random.getrandbits(128):032x}"
        self.created = int(time.time())
        self.request = request
        self.instructions = instructions
        self.sequence = 0

    def _event(self, kind: str, **fields: Any) -> bytes:
        value = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + encode_json(value) + b"\n\n"

    def _part(self, text: str) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def _item(self, status: str, text: str | None) -> dict[str, Any]:
        content = [] if text is None else [self._part(text)]
        return {"id": self.item_id, "type": "message", "status": status, "role": "assistant", "content": content}

    def response(
        self, status: str, cutter: Cutter | None = None, error: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The `response` object: in progress (no output yet), completed, incomplete or failed
        (with its `error`)."""
        usage = None if cutter is None else cutter.usage
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.request.model,
            "instructions": self.instructions,
            "output": [] if cutter is None else [self._item("completed", cutter.answer)],
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "error": error,
            "max_output_tokens": self.request.max_tokens,
            "temperature": self.request.temperature,
            "top_p": self.request.top_p,
            "parallel_tool_calls": False,
            "tool_choice": "none",
            "tools": [],
            "metadata": {},
            "usage": None
            if usage is None
            else {
                "input_tokens": usage.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": usage.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": usage.total_tokens,
            },
        }

    def complete(self, cutter: Cutter) -> dict[str, Any]:
        """The whole answer as one `response`."""
        return self.response(_status(cutter), cutter)

    def start(self) -> bytes:
        """The events before the first delta."""
        where = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
        return (
            self._event("response.created", response=self.response("in_progress"))
            + self._event("response.in_progress", response=self.response("in_progress"))
            + self._event("response.output_item.added", output_index=0, item=self._item("in_progress", None))
            + self._event("response.content_part.added", **where, part=self._part(""))
        )

    def delta(self, text: str) -> bytes:
        """One piece of text."""
        where = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
        return self._event("response.output_text.delta", **where, delta=text, logprobs=[])

    def end(self, cutter: Cutter) -> bytes:
        """The events after the last delta."""
        where = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
        status = _status(cutter)
        return (
            self._event("response.output_text.done", **where, text=cutter.answer, logprobs=[])
            + self._event("response.content_part.done", **where, part=self._part(cutter.answer))
            + self._event("response.output_item.done", output_index=0, item=self._item("completed", cutter.answer))
            + self._event(f"response.{status}", response=self.response(status, cutter))
        )

    def error(self, exc: Exception) -> bytes:
        """The events that end a stream whose callback failed: `error`, then `response.failed`
        (whose error code is `server_error` for a 5xx, as OpenAI's are)."""
        error = error_event(exc)["error"]
        failed = {
            "code": "server_error" if error["type"] == "server_error" else error["code"],
            "message": error["message"],
        }
        return self._event("error", code=error["code"], message=error["message"], param=None) + self._event(
            "response.failed", response=self.response("failed", error=failed)
        )


def _status(cutter: Cutter) -> str:
    return "incomplete" if cutter.finish_reason == "length" else "completed"
