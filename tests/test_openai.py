"""The OpenAI-compatible endpoints, through a real uvicorn server and the official `openai` client."""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx
import openai
import pytest
from openai.types.responses import ResponseErrorEvent, ResponseFailedEvent

import izzati
from izzati import Backend, ChatRequest, Usage
from tests.support.http import wait_for_http
from tests.support.mcpclient import connect
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc

Serve = Callable[..., str]


def words(request: ChatRequest) -> Iterator[str | Usage]:
    """Echoes the last user message back, one word a piece, and reports its counts."""
    pieces = [word + " " for word in request.prompt.split()] or ["(nothing)"]
    yield from pieces
    yield Usage(prompt_tokens=len(request.prompt.split()), completion_tokens=len(pieces))


def client(url: str, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=options.pop("api_key", "none"), **options)


def test_chat_not_streamed_has_the_answer_the_finish_reason_and_the_usage(serve: Serve) -> None:
    ai = client(serve(Backend(chat={"echo-lm": words}).app))
    reply = ai.chat.completions.create(model="echo-lm", messages=[{"role": "user", "content": "one two three"}])
    assert reply.object == "chat.completion" and reply.model == "echo-lm"
    assert reply.choices[0].message.content == "one two three "
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (3, 3, 6)


def test_chat_streamed_arrives_as_chunks_while_the_generator_runs(serve: Serve) -> None:
    first_read = threading.Event()

    def slow(request: ChatRequest) -> Iterator[str]:
        yield "Hello"
        assert first_read.wait(10)  # the client has the first piece while this generator still runs
        yield ","
        yield " world"

    ai = client(serve(Backend(chat={"slow": slow}).app))
    stream = ai.chat.completions.create(model="slow", messages=[{"role": "user", "content": "hi"}], stream=True)
    chunks = iter(stream)
    role = next(chunks)
    assert role.object == "chat.completion.chunk" and role.choices[0].delta.role == "assistant"
    assert next(chunks).choices[0].delta.content == "Hello"
    first_read.set()
    rest = list(chunks)
    assert "".join(c.choices[0].delta.content or "" for c in rest) == ", world"
    assert rest[-1].choices[0].finish_reason == "stop"


def test_the_stream_ends_with_done_and_can_carry_the_usage(serve: Serve) -> None:
    url = serve(Backend(chat={"echo-lm": words}).app)
    body = {
        "model": "echo-lm",
        "messages": [{"role": "user", "content": "a b"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    reply = httpx.post(url + "/v1/chat/completions", json=body)
    assert reply.headers["content-type"] == "text/event-stream"
    events = [line for line in reply.text.split("\n\n") if line]
    assert events[-1] == "data: [DONE]"
    ai = client(url)
    chunks = list(ai.chat.completions.create(**body))  # type: ignore[call-overload]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 4


def test_max_tokens_and_stop_are_enforced_for_a_generator_that_ignores_them(serve: Serve) -> None:
    closed = threading.Event()

    def endless(request: ChatRequest) -> Iterator[str]:
        try:
            while True:
                yield "la "
        finally:
            closed.set()

    ai = client(serve(Backend(chat={"endless": endless, "echo-lm": words}).app))
    reply = ai.chat.completions.create(model="endless", messages=[{"role": "user", "content": "sing"}], max_tokens=4)
    assert reply.choices[0].message.content == "la la la la "
    assert reply.choices[0].finish_reason == "length"
    assert closed.wait(5)
    cut = ai.chat.completions.create(
        model="echo-lm", messages=[{"role": "user", "content": "one two STOP three"}], stop=["ST", "three"]
    )
    assert cut.choices[0].message.content == "one two " and cut.choices[0].finish_reason == "stop"
    streamed = ai.chat.completions.create(
        model="echo-lm", messages=[{"role": "user", "content": "one two STOP three"}], stop="STOP", stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "one two "


def test_responses_not_streamed_and_streamed(serve: Serve) -> None:
    async def agen(request: ChatRequest) -> AsyncIterator[str]:
        assert request.messages[0] == {"role": "system", "content": "be brief"}
        for piece in ["to ", "be ", "or ", "not"]:
            await asyncio.sleep(0.001)
            yield piece

    ai = client(serve(Backend(chat={"hamlet": agen}).app))
    reply = ai.responses.create(model="hamlet", input="question?", instructions="be brief")
    assert reply.status == "completed" and reply.output_text == "to be or not"
    events = list(ai.responses.create(model="hamlet", input="question?", instructions="be brief", stream=True))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "to be or not" and len(deltas) == 4
    assert [e.sequence_number for e in events] == list(range(len(events)))
    short = ai.responses.create(model="hamlet", input="q", instructions="be brief", max_output_tokens=2)
    assert short.status == "incomplete" and short.output_text == "to be "


def test_a_callback_that_fails_mid_stream_ends_the_stream_as_openai_does(serve: Serve) -> None:
    def breaks(request: ChatRequest) -> Iterator[str]:
        yield "to "
        yield "be "
        raise RuntimeError("the model fell over")

    ai = client(serve(Backend(chat={"hamlet": breaks}).app))
    # Responses: the deltas so far, then `error`, then `response.failed` carrying the error
    events = list(ai.responses.create(model="hamlet", input="q", stream=True))
    kinds = [event.type for event in events]
    assert kinds[-2:] == ["error", "response.failed"], kinds
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "to be "
    error, ended = events[-2:]
    assert isinstance(error, ResponseErrorEvent) and isinstance(ended, ResponseFailedEvent)
    failed = ended.response
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "server_error" and failed.error.message == error.message
    assert [e.sequence_number for e in events] == list(range(len(events)))
    # chat completions: the chunks so far, then the client raises the error the stream ends with
    chunks: list[str] = []
    stream = ai.chat.completions.create(model="hamlet", messages=[{"role": "user", "content": "q"}], stream=True)
    with pytest.raises(openai.APIError) as raised:
        for chunk in stream:
            chunks.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(chunks) == "to be " and raised.value.message == failed.error.message


def test_models_lists_the_served_names(serve: Serve) -> None:
    ai = client(serve(Backend(chat={"echo-lm": words}, embeddings={"lengths": lambda texts: [[1.0]] * len(texts)}).app))
    assert sorted(model.id for model in ai.models.list()) == ["echo-lm", "lengths"]
    assert ai.models.retrieve("echo-lm").id == "echo-lm"


def test_embeddings_batch_the_texts_of_concurrent_requests(serve: Serve) -> None:
    sizes: list[int] = []

    @izzati.batched(max_size=64, max_wait_ms=50)
    def embed(texts: list[str]) -> list[list[float]]:
        sizes.append(len(texts))
        return [[float(len(text)), 0.5] for text in texts]

    url = serve(Backend(embeddings={"lengths": embed}).app)
    ai = client(url)
    one = ai.embeddings.create(model="lengths", input="abcd")  # the client asks for base64: decoded
    assert one.data[0].embedding == [4.0, 0.5] and one.model == "lengths"
    floats = httpx.post(url + "/v1/embeddings", json={"model": "lengths", "input": ["a", "bb"]}).json()
    assert [d["embedding"] for d in floats["data"]] == [[1.0, 0.5], [2.0, 0.5]]
    packed = httpx.post(url + "/v1/embeddings", json={"model": "lengths", "input": "xyz", "encoding_format": "base64"})
    assert struct.unpack("<2f", base64.b64decode(packed.json()["data"][0]["embedding"])) == (3.0, 0.5)
    sizes.clear()
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: ai.embeddings.create(model="lengths", input=["x" * i, "y"]), range(8)))
    assert [r.data[0].embedding[0] for r in replies] == [float(i) for i in range(8)]
    assert sum(sizes) == 16 and max(sizes) > 2  # texts of several requests went in one call


def test_non_streamed_chat_batches_concurrent_requests(serve: Serve) -> None:
    sizes: list[int] = []

    @izzati.batched(max_size=16, max_wait_ms=100)
    def answer_all(requests: list[ChatRequest]) -> list[str]:
        sizes.append(len(requests))
        return [request.prompt.upper() for request in requests]

    ai = client(serve(Backend(chat={"shout": answer_all}).app))

    def ask(i: int) -> str:
        reply = ai.chat.completions.create(model="shout", messages=[{"role": "user", "content": f"hi {i}"}])
        return reply.choices[0].message.content or ""

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(ask, range(6))) == [f"HI {i}" for i in range(6)]
    assert sum(sizes) == 6 and max(sizes) > 1


def test_a_wrong_key_is_an_openai_authentication_error(serve: Serve) -> None:
    url = serve(Backend(chat={"echo-lm": words}, api_key="sekret").app)
    with pytest.raises(openai.AuthenticationError) as raised:
        client(url, api_key="wrong").models.list()
    assert raised.value.status_code == 401
    assert raised.value.body == {
        "message": "this service needs an API key: send Authorization: Bearer <key>",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    assert [m.id for m in client(url, api_key="sekret").models.list()] == ["echo-lm"]
    assert httpx.post(url + "/").json()["error"] == "unauthorized"  # the other paths keep izzati's shape


def test_a_bad_request_names_the_field_and_an_unknown_model_is_404(serve: Serve) -> None:
    url = serve(Backend(chat={"echo-lm": words}).app)
    ai = client(url)
    with pytest.raises(openai.BadRequestError) as bad:
        ai.chat.completions.create(model="echo-lm", messages=[{"role": "user", "content": "x"}], temperature=7)
    assert bad.value.body is not None and bad.value.body["param"] == "temperature"  # type: ignore[index]
    assert bad.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as missing:
        ai.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    raw = httpx.post(url + "/v1/chat/completions", content=b"{not json")
    assert raw.status_code == 400 and raw.json()["error"]["message"].startswith("the body is not valid JSON")
    assert httpx.get(url + "/v1/nothing").json()["error"]["code"] == "not_found"


def test_a_failing_callback_is_a_500_the_client_does_not_retry(serve: Serve) -> None:
    calls: list[int] = []

    def broken(request: ChatRequest) -> Iterator[str]:
        calls.append(1)
        raise RuntimeError("no model")
        yield ""

    ai = client(serve(Backend(chat={"broken": broken}).app), max_retries=2)
    with pytest.raises(openai.InternalServerError) as failed:
        ai.chat.completions.create(model="broken", messages=[{"role": "user", "content": "x"}], stream=True)
    assert failed.value.body["code"] == "callback_failed"  # type: ignore[index]
    assert calls == [1]  # x-should-retry: false


def test_overload_is_retried_by_the_client_after_the_computed_wait(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    holding = threading.Event()
    release = threading.Event()

    def slow(request: ChatRequest) -> Iterator[str]:
        if request.prompt == "hold":
            holding.set()
            assert release.wait(30)  # busy until the test has seen the client refused and retrying
        else:
            time.sleep(float(request.prompt))
        yield "done"

    def refusals() -> int:
        return sum("path=/v1/chat/completions status=503" in r.getMessage() for r in caplog.records)

    url = serve(Backend(chat={"slow": slow}, max_inflight=1).app)
    ai = client(url, max_retries=4)
    ai.chat.completions.create(model="slow", messages=[{"role": "user", "content": "0.6"}])  # measured: 0.6 s
    ask = functools.partial(ai.chat.completions.create, model="slow")
    with ThreadPoolExecutor(2) as pool, caplog.at_level(logging.INFO, logger="izzati.access"):
        busy = pool.submit(lambda: ask(messages=[{"role": "user", "content": "hold"}]))
        assert holding.wait(10)
        refused = httpx.post(url + "/v1/chat/completions", json={"model": "slow", "messages": []})
        assert refused.status_code == 503 and refused.headers["x-should-retry"] == "true"
        assert 400 <= int(refused.headers["retry-after-ms"]) <= 1500 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "overloaded"
        late = pool.submit(lambda: ask(messages=[{"role": "user", "content": "0"}]))
        deadline = time.monotonic() + 20
        while refusals() < 3 and time.monotonic() < deadline:  # the client was refused twice: it retries
            time.sleep(0.02)
        assert refusals() >= 3
        release.set()
        assert busy.result().choices[0].message.content == "done"
        assert late.result().choices[0].message.content == "done"  # a retry after the busy call ended
    statuses = [r.getMessage() for r in caplog.records if "path=/v1/chat/completions" in r.getMessage()]
    assert "status=200" in statuses[-1]
    retried = [line for line in statuses if "status=503" in line][1:]
    assert len(retried) >= 2 and not late.exception()


def test_a_client_that_hangs_up_stops_the_generator(serve: Serve) -> None:
    stopped = threading.Event()
    noticed = threading.Event()
    made: list[int] = []

    def endless(request: ChatRequest) -> Iterator[str]:
        try:
            for n in range(100_000):
                made.append(n)
                for _ in range(20):  # a long step that checks whether anybody still waits
                    if izzati.cancelled():
                        noticed.set()
                        break
                    time.sleep(0.01)
                yield "tick "
        finally:
            stopped.set()

    url = serve(Backend(chat={"endless": endless}).app)
    ai = client(url)
    stream = ai.chat.completions.create(model="endless", messages=[{"role": "user", "content": "x"}], stream=True)
    next(iter(stream))
    stream.close()
    assert stopped.wait(5)
    stopped.clear()
    made.clear()
    with pytest.raises(httpx.ReadTimeout):  # not streamed: the client gives up waiting
        body = {"model": "endless", "messages": [{"role": "user", "content": "x"}]}
        httpx.post(url + "/v1/chat/completions", json=body, timeout=0.5)
    assert stopped.wait(5) and noticed.is_set()
    count = len(made)
    time.sleep(0.2)
    assert len(made) == count < 1000


def test_the_settings_serve_chat_embeddings_and_mcp_from_python_m_app(spawn: Callable[..., Proc]) -> None:
    port = free_tcp_port()
    env = {
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_CHAT": "tiny-lm=textmodels:TinyLM",
        "IZZATI_EMBEDDINGS": "lengths=textmodels:lengths",
        "IZZATI_MCP": "true",
    }
    proc = spawn([PYTHON, "-m", "app"], env=env)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/health", proc=proc.popen)
    ai = client(url)
    assert sorted(model.id for model in ai.models.list()) == ["lengths", "tiny-lm"]
    reply = ai.chat.completions.create(model="tiny-lm", messages=[{"role": "user", "content": "a b c"}])
    assert reply.choices[0].message.content == "c b a " and reply.usage is not None
    assert ai.embeddings.create(model="lengths", input="two words").data[0].embedding == [9.0, 2.0]

    async def tools() -> list[str]:
        async with connect(url) as mcp:
            return [tool.name for tool in (await mcp.list_tools()).tools]

    assert anyio.run(tools) == ["echo", "izzati_job"]  # the default callback, and jobs are on


def test_a_wrong_chat_setting_is_one_line_naming_it(spawn: Callable[..., Proc]) -> None:
    proc = spawn([PYTHON, "-m", "app"], env={"IZZATI_CHAT": "tiny-lm"})
    assert proc.popen.wait(30) != 0
    assert "IZZATI_CHAT='tiny-lm': 'tiny-lm' is not 'model-name=module:function'" in proc.output()
