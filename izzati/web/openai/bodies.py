"""The request bodies of the OpenAI-compatible endpoints, validated with pydantic, and the
`ChatRequest` each one becomes. A body that does not validate is a 400 naming the field."""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ...chat import ChatRequest, Message
from .errors import OpenAIError

__all__ = ["ChatBody", "ResponsesBody", "EmbeddingsBody", "parse"]

Body = TypeVar("Body", bound=BaseModel)


def _text(content: Any) -> str:
    """A message's content as one string: OpenAI's content parts (`{"type": "text", "text"}`,
    `input_text`, `output_text`) joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or not isinstance(part.get("text"), str):
                raise ValueError("only text content parts are supported ({'type': 'text', 'text': ...})")
            texts.append(part["text"])
        return "".join(texts)
    raise ValueError("content must be a string or a list of text parts")


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Any = None

    def message(self) -> Message:
        return {"role": self.role, "content": _text(self.content)}

    @field_validator("content")
    @classmethod
    def _content_is_text(cls, value: Any) -> Any:
        _text(value)
        return value


class _Common(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None

    def _request(self, messages: list[Message], max_tokens: int | None, stop: tuple[str, ...]) -> ChatRequest:
        return ChatRequest(
            messages=messages,
            model=self.model,
            max_tokens=max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            stop=stop,
            extra=dict(self.model_extra or {}),
        )


class ChatBody(_Common):
    """`POST /v1/chat/completions`."""

    messages: list[_Message] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=1)
    stream_options: dict[str, Any] | None = None

    def request(self) -> ChatRequest:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        limit = self.max_completion_tokens or self.max_tokens
        return self._request([m.message() for m in self.messages], limit, stop)

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class ResponsesBody(_Common):
    """`POST /v1/responses` (text in, text out)."""

    input: str | list[_Message] = Field(min_length=1)
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1)

    def request(self) -> ChatRequest:
        messages: list[Message] = [{"role": "system", "content": self.instructions}] if self.instructions else []
        if isinstance(self.input, str):
            messages.append({"role": "user", "content": self.input})
        else:
            messages.extend(m.message() for m in self.input)
        return self._request(messages, self.max_output_tokens, ())


class EmbeddingsBody(BaseModel):
    """`POST /v1/embeddings`: a string or a list of strings."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    input: str | list[str] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


def parse(model: type[Body], raw: bytes) -> Body:
    """`raw` validated as `model`; OpenAIError (400, the first offending field as `param`)."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OpenAIError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise OpenAIError("the body must be a JSON object")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"])
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise OpenAIError(f"invalid request: {detail}", param=param or None) from None
