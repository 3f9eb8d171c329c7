"""`OpenAIDoor`: the OpenAI-compatible endpoints of a service.

- `POST /v1/chat/completions` and `POST /v1/responses`: a chat callback's answer, whole or
  streamed as Server-Sent Events;
- `POST /v1/embeddings`: an embedding callback's vectors (floats, or base64 float32);
- `GET /v1/models` (and `/v1/models/{name}`): the served model names.

Every error is in OpenAI's shape; beyond `max_inflight` requests in this process a request gets
503 with `retry-after-ms` / `Retry-After` from the measured request time and `x-should-retry:
true`, which the official clients honour. A hang-up closes the callback's generator.
"""

from __future__ import annotations

import asyncio
import base64
import math
import struct
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..._process import per_process
from ...chat import ChatRequest
from ...exceptions import Overloaded
from ...jobs import Hangup, current_request
from ..hangup import HangupWatch
from ..inputs import ClientDisconnected
from ..overload import retry_wait
from ..responses import json_response
from ..streaming import ItemStream
from ..threadpool import CallbackPool
from .bodies import ChatBody, EmbeddingsBody, ResponsesBody, parse
from .completions import ChatFormat
from .errors import OpenAIError, from_exception, openai_error, unauthorized
from .models import Kind, ServedModel
from .pieces import Cutter, is_async_pieces
from .responses import ResponseFormat
from .stream import Format, acollect, aevents, collect, events

__all__ = ["OpenAIDoor"]

Handler = Callable[[Request], Any]
Answer = ChatFormat | ResponseFormat


class _Asgi:
    """A request handler as a raw ASGI endpoint (its reply may be any ASGI app: a stream)."""

    def __init__(self, door: OpenAIDoor, handler: Handler) -> None:
        self.door = door
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.door.serve(self.handler, scope, receive, send)


class OpenAIDoor:
    """The OpenAI-compatible endpoints for named chat and embedding callbacks.

    Arguments:
        chat: model name → chat callback (see `izzati.chat`).
        embeddings: model name → embedding callback.
        pool: this process's thread pool for plain callbacks.
        max_body_bytes: the largest request body (413 beyond).
        max_inflight: most requests in progress in this process (None: no bound).
        threads: how many plain callbacks may run at once (for the computed wait).
        metrics: count the batches (`izzati.metrics`).
    """

    def __init__(
        self,
        chat: Mapping[str, Callable[..., Any]],
        embeddings: Mapping[str, Callable[..., Any]],
        *,
        pool: Callable[[], CallbackPool],
        max_body_bytes: int,
        max_inflight: int | None = None,
        threads: int = 1,
        metrics: bool = True,
    ) -> None:
        taken = set(chat) & set(embeddings)
        if taken:
            raise ValueError(f"model names serve one callback each: {sorted(taken)} are both chat and embeddings")
        self.models = {name: ServedModel(name, cb, Kind.CHAT, pool, metrics) for name, cb in chat.items()}
        self.models |= {name: ServedModel(name, cb, Kind.EMBEDDINGS, pool, metrics) for name, cb in embeddings.items()}
        self.pool = pool
        self.max_body_bytes = max_body_bytes
        self.max_inflight = max_inflight
        self.threads = threads
        self.inflight = 0
        self.mean_seconds = 0.0
        self.created = int(time.time())

    def routes(self) -> list[BaseRoute]:
        """The routes to add to the app."""
        return [
            Route("/v1/chat/completions", _Asgi(self, self.chat), methods=["POST"], include_in_schema=False),
            Route("/v1/responses", _Asgi(self, self.responses), methods=["POST"], include_in_schema=False),
            Route("/v1/embeddings", _Asgi(self, self.embeddings), methods=["POST"], include_in_schema=False),
            Route("/v1/models", _Asgi(self, self.list_models), methods=["GET"], include_in_schema=False),
            Route("/v1/models/{name:path}", _Asgi(self, self.one_model), methods=["GET"], include_in_schema=False),
            Route("/v1/{rest:path}", _Asgi(self, self.not_found), include_in_schema=False),
        ]

    prefix = "/v1/"

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """This process's life: every model set up in the background, torn down at the end."""
        for model in self.models.values():
            model.start_setup()
        yield
        await asyncio.to_thread(self.teardown)

    def unauthorized(self) -> Response:
        """The 401 of a `/v1/` path without the right key, in OpenAI's shape."""
        return unauthorized()

    def setting_up(self) -> list[str]:
        """The models whose setup has not finished in this process."""
        return [f"model {m.name}" for m in self.models.values() if not m.invoker.ready]

    def teardown(self) -> None:
        """Run each callback's `teardown()` (in this process, if it was set up here)."""
        for model in self.models.values():
            model.invoker.teardown()

    @per_process
    def watch(self) -> HangupWatch:
        """The non-streamed answers of this process, watched for hang-ups."""
        return HangupWatch()

    async def serve(self, handler: Handler, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request: admitted or refused, counted, every error in OpenAI's shape."""
        if self.max_inflight is not None and self.inflight >= self.max_inflight:
            await self._overloaded()(scope, receive, send)
            return
        self.inflight += 1
        started = time.perf_counter()
        try:
            try:
                reply: ASGIApp = await handler(Request(scope, receive))
            except (ClientDisconnect, ClientDisconnected):
                return  # nobody to answer
            except Exception as exc:
                reply = openai_error(from_exception(exc, where=f"{scope['method']} {scope['path']}"))
            await reply(scope, receive, send)
        finally:
            self.inflight -= 1
            took = time.perf_counter() - started
            # a moving average over about the last 20 requests, as `POST /`'s
            self.mean_seconds = took if not self.mean_seconds else self.mean_seconds + (took - self.mean_seconds) / 20

    def _overloaded(self) -> ASGIApp:
        limit = self.max_inflight or 1
        wait = retry_wait(self.mean_seconds, self.inflight, limit, min(self.threads, limit))
        seconds = max(1, math.ceil(wait))
        error = Overloaded(
            f"{self.inflight} requests are in progress (IZZATI_MAX_INFLIGHT={self.max_inflight}): try again in "
            f"{wait:.2f} s",
            retry_after=seconds,
        )
        # the body was not read: close, or it would be read as the next request
        headers = {"retry-after-ms": str(max(100, math.ceil(wait * 1000))), "Connection": "close"}
        return openai_error(error, headers)

    async def _body(self, request: Request) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise OpenAIError(
                    f"the body is over the limit of {self.max_body_bytes} bytes", status_code=413, code="too_large"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _model(self, name: str, kind: Kind) -> ServedModel:
        model = self.models.get(name)
        if model is None or model.kind is not kind:
            served = sorted(m.name for m in self.models.values() if m.kind is kind)
            raise OpenAIError(
                f"the model {name!r} does not exist here; {kind} models: {', '.join(served) or 'none'}",
                status_code=404,
                code="model_not_found",
                param="model",
            )
        return model

    async def chat(self, request: Request) -> ASGIApp:
        body = parse(ChatBody, await self._body(request))
        ask = body.request()
        return await self._answer(request, ask, ChatFormat(ask.model, body.include_usage), body.stream)

    async def responses(self, request: Request) -> ASGIApp:
        body = parse(ResponsesBody, await self._body(request))
        ask = body.request()
        return await self._answer(request, ask, ResponseFormat(ask, body.instructions), body.stream)

    async def _answer(self, request: Request, ask: ChatRequest, fmt: Answer, stream: bool) -> ASGIApp:
        model = self._model(ask.model, Kind.CHAT)
        await model.ready()
        hangup = Hangup()
        current_request.set(hangup)  # before the call: a plain callback's thread copies this context
        watch = self.watch
        watch.begin(request.receive, hangup)
        try:
            result = await model.answer(ask)
            cutter = Cutter(ask.max_tokens, ask.stop)
            if stream:
                return self._stream(result, cutter, fmt, hangup)
            if is_async_pieces(result):
                await acollect(result, cutter)
            else:
                await self.pool().run(lambda: collect(result, cutter, hangup))
        except asyncio.CancelledError:
            if hangup.is_set():
                raise ClientDisconnected from None
            raise
        finally:
            watch.end(hangup)
        return json_response(fmt.complete(cutter))

    def _stream(self, result: Any, cutter: Cutter, fmt: Format, hangup: Hangup) -> ASGIApp:
        items = aevents(result, cutter, fmt) if is_async_pieces(result) else events(result, cutter, fmt)
        return ItemStream(
            items,
            self.pool(),
            hangup,
            events=False,
            media=b"text/event-stream",
            on_error=lambda exc: openai_error(from_exception(exc, where="a chat callback")),
        )

    async def embeddings(self, request: Request) -> ASGIApp:
        body = parse(EmbeddingsBody, await self._body(request))
        model = self._model(body.model, Kind.EMBEDDINGS)
        await model.ready()
        vectors = await model.embed(body.texts)
        data = [
            {"object": "embedding", "index": i, "embedding": _encoded(vector, body.encoding_format)}
            for i, vector in enumerate(vectors)
        ]
        words = sum(len(text.split()) for text in body.texts)  # no tokenizer here: whitespace words
        usage = {"prompt_tokens": words, "total_tokens": words}
        return json_response({"object": "list", "data": data, "model": model.name, "usage": usage})

    def _card(self, model: ServedModel) -> dict[str, Any]:
        return {"id": model.name, "object": "model", "created": self.created, "owned_by": "izzati"}

    async def list_models(self, request: Request) -> ASGIApp:
        return json_response({"object": "list", "data": [self._card(m) for m in self.models.values()]})

    async def one_model(self, request: Request) -> ASGIApp:
        name = request.path_params["name"]
        model = self.models.get(name)
        if model is None:
            raise OpenAIError(f"the model {name!r} does not exist here", status_code=404, code="model_not_found")
        return json_response(self._card(model))

    async def not_found(self, request: Request) -> ASGIApp:
        raise OpenAIError(f"{request.method} {request.url.path} is not served here", status_code=404, code="not_found")


def _encoded(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":  # little-endian float32, as OpenAI sends it
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector
