"""examples/textgen, served by its documented command: a tiny random-weight GPT-2 (transformers)
streaming its tokens; the text is the model's, generated here too with the same seed."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from types import ModuleType

import httpx
import openai
import pytest

from tests.examples.serve import EXAMPLES, served

CHAT = "tiny-gpt=textgen:Chat"

# the first test also waits for the server's start: imports of torch or scikit-learn and setup()
pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # the example's documented command: IZZATI_CHAT=tiny-gpt=textgen:Chat izzati run textgen:Generator
    with served("textgen", "textgen:Generator", tmp_path_factory.mktemp("logs"), IZZATI_CHAT=CHAT) as base:
        yield base


@pytest.fixture(scope="module")
def textgen() -> ModuleType:
    """The example's module, imported from its file (it is not a package)."""
    spec = importlib.util.spec_from_file_location("textgen", EXAMPLES / "textgen" / "textgen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def local_text(textgen: ModuleType, prompt: str, max_tokens: int, temperature: float, seed: int) -> str:
    generator = textgen.Generator()
    generator.setup("cpu")
    return "".join(generator.generate(prompt, max_tokens, temperature, seed))


def test_tokens_stream_as_server_sent_events_and_ndjson(url: str, textgen: ModuleType) -> None:
    fields = {"prompt": "Once upon a time", "max_tokens": "24", "temperature": "0.8", "seed": "7"}
    want = local_text(textgen, "Once upon a time", 24, 0.8, 7)
    assert len(set(want)) > 3  # sampled noise, not one repeated character

    events: list[str] = []
    headers = {"Accept": "text/event-stream"}
    with httpx.stream("POST", url + "/", data=fields, headers=headers, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: "))["token"])
    assert len(events) == 24 and "".join(events) == want

    with httpx.stream("POST", url + "/", json={**fields, "max_tokens": 24}, timeout=120) as r:
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line)["token"] for line in r.iter_lines() if line]
    assert "".join(lines) == want


def test_bad_parameters_are_refused_before_generating(url: str) -> None:
    for bad, field in (
        ({"prompt": "x", "max_tokens": "0"}, "max_tokens"),
        ({"max_tokens": "3"}, "prompt"),
        ({"prompt": "x", "temperature": "hot"}, "temperature"),
    ):
        r = httpx.post(url + "/", data=bad, headers={"Accept": "text/event-stream"})
        assert r.status_code == 422 and r.json()["error"] == "invalid_input", r.text
        assert [f["loc"][-1] for f in r.json()["fields"]] == [field]


def test_the_openai_client_streams_the_chat_model(url: str, textgen: ModuleType) -> None:
    ai = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    assert [m.id for m in ai.models.list()] == ["tiny-gpt"]
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Tell me a story"},
    ]
    prompt = "system: Be brief.\nuser: Tell me a story\nassistant: "
    want = local_text(textgen, prompt, 16, 0.5, 3)
    pieces = []
    stream = ai.chat.completions.create(
        model="tiny-gpt", messages=messages, max_tokens=16, temperature=0.5, seed=3, stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    assert len(pieces) == 16 and "".join(pieces) == want

    reply = ai.chat.completions.create(model="tiny-gpt", messages=messages, max_tokens=16, temperature=0.5, seed=3)
    assert reply.choices[0].message.content == want
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 16
    with pytest.raises(openai.NotFoundError):
        ai.chat.completions.create(model="gpt-4o", messages=messages)
