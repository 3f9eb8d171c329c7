"""The OpenAI-compatible endpoints: `/v1/chat/completions`, `/v1/responses`, `/v1/embeddings`,
`/v1/models`, for the chat and embedding callbacks of `izzati.chat`'s contract.

Modules: `bodies` (request bodies), `pieces` (max_tokens and stop over text pieces), `stream`
(streamed and collected answers), `completions` and `responses` (the reply objects), `models`
(the served callbacks), `errors` (OpenAI's error shape), `door` (the routes).
"""

from __future__ import annotations

from .door import OpenAIDoor

__all__ = ["OpenAIDoor"]
