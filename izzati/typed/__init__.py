"""Typed callbacks: the signature is the API. The parameters become one pydantic model that
validates every request, the return annotation checks and shapes the result, and both give the
JSON schemas of `/openapi.json`, the try page, `izzati send --inputs` and the OpenAI/MCP doors.

This package never imports the web stack: a worker validates a job's inputs with it too.
"""

from __future__ import annotations

from .files import Accept, File
from .inputs import Inputs, Validated
from .outputs import Outputs
from .signature import CallbackSchema, Typed, callback_schema, read_signature

__all__ = [
    "Accept",
    "File",
    "Inputs",
    "Outputs",
    "Validated",
    "Typed",
    "read_signature",
    "CallbackSchema",
    "callback_schema",
]
