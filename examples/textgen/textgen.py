"""A text generator that streams its tokens: a tiny GPT-2 built from a config with random weights
(transformers; nothing is downloaded), reading and writing bytes (no tokenizer files to fetch).

Serve it (from this directory, after `pip install -r requirements.txt`), at POST / and as the
model "tiny-gpt" of the OpenAI-compatible endpoints (/v1/chat/completions, /v1/responses):

    IZZATI_CHAT=tiny-gpt=textgen:Chat izzati run textgen:Generator

Ask it; each token comes as soon as it is made (Server-Sent Events here, NDJSON without the
Accept header):

    curl -N -H 'Accept: text/event-stream' -d prompt='Once upon a time' -d max_tokens=20 http://127.0.0.1:5020/

or with the official OpenAI client, streamed:

    from openai import OpenAI
    ai = OpenAI(base_url="http://127.0.0.1:5020/v1", api_key="unused")
    for chunk in ai.chat.completions.create(model="tiny-gpt", messages=[{"role": "user", "content": "hi"}],
                                           max_tokens=20, stream=True):
        print(chunk.choices[0].delta.content or "", end="")

With random weights the text is noise (printable ASCII only); the serving is what is real: the
model runs once per token with its key/value cache, a client that hangs up stops the generation
at the next token, and a `seed` makes a reply reproducible. To serve a trained model, load it in
`setup` with `AutoModelForCausalLM.from_pretrained(...)` and its tokenizer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import Field
from typing_extensions import TypedDict

import izzati
from izzati import ChatRequest, Usage

CONTEXT = 512  # positions the model sees: the prompt is cut to its last CONTEXT - max_tokens bytes
# The setups of the two callbacks (POST / and the chat model) run at once in each server process:
# one builds its model at a time, as transformers' lazy imports are not thread-safe ("cannot import
# name 'GPT2Config'") and the random weights come from torch's one global generator.
_BUILDING = threading.Lock()


class Token(TypedDict):
    """One generated piece of text."""

    token: str


class Generator:
    """GPT-2 with 2 layers of width 64 over the 256 byte values, sampled one byte at a time."""

    def setup(self, device: str) -> None:
        # device: "cpu", or "cuda:0" in a GPU process (IZZATI_DEVICES; each sees its own GPU as cuda:0)
        with _BUILDING:
            import torch
            from transformers import GPT2Config, GPT2LMHeadModel

            torch.manual_seed(0)  # the same random weights in every process and every setup
            config = GPT2Config(
                vocab_size=256, n_positions=CONTEXT, n_embd=64, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0
            )
            self.model = GPT2LMHeadModel(config).eval().to(device)
        self.torch = torch
        self.device = device
        # only printable ASCII may be generated, so that the noise stays readable
        self.printable = torch.full((256,), float("-inf"), device=device)
        self.printable[32:127] = 0

    def generate(self, prompt: str, max_tokens: int, temperature: float, seed: int) -> Iterator[str]:
        """The generated text, one byte (one character) at a time."""
        torch = self.torch
        context = list(prompt.encode("utf-8"))[-(CONTEXT - max_tokens) :] or [ord(" ")]
        ids = torch.tensor([context], device=self.device)
        sampler = torch.Generator(device=self.device).manual_seed(seed)
        cache: Any = None  # the keys and values of the tokens so far: each step computes one token
        with torch.inference_mode():
            for _ in range(max_tokens):
                out = self.model(input_ids=ids, cache=cache, use_cache=True)
                cache = out.cache
                logits = out.logits[0, -1] + self.printable
                if temperature == 0:
                    chosen = logits.argmax()
                else:
                    probabilities = (logits / temperature).softmax(dim=-1)
                    chosen = torch.multinomial(probabilities, 1, generator=sampler)[0]
                ids = chosen.view(1, 1)
                yield chr(int(chosen))

    def __call__(
        self,
        prompt: str,
        max_tokens: Annotated[int, Field(ge=1, le=256, description="how many tokens to generate")] = 32,
        temperature: Annotated[float, Field(ge=0, le=2, description="0 picks the likeliest token")] = 0.8,
        seed: int = 0,
    ) -> Iterator[Token]:
        for piece in self.generate(prompt, max_tokens, temperature, seed):
            if izzati.cancelled():  # the client hung up: stop computing for nobody
                return
            yield {"token": piece}


class Chat(Generator):
    """The same model as a chat callback: the conversation in, pieces of the answer out."""

    def __call__(self, request: ChatRequest) -> Iterator[str | Usage]:
        prompt = "".join(f"{m['role']}: {m['content']}\n" for m in request.messages) + "assistant: "
        # izzati stops the stream at the client's max_tokens; the context bounds it here too
        max_tokens = min(request.max_tokens or 64, CONTEXT // 2)
        temperature = 0.8 if request.temperature is None else max(0.0, request.temperature)
        # first: izzati closes the generator at the client's max_tokens, and this model (with no
        # end-of-text token) always makes all of its max_tokens
        prompt_tokens = min(len(prompt.encode("utf-8")), CONTEXT - max_tokens)
        yield Usage(prompt_tokens=prompt_tokens, completion_tokens=max_tokens)
        for piece in self.generate(prompt, max_tokens, temperature, request.seed or 0):
            if izzati.cancelled():  # the client hung up
                return
            yield piece
