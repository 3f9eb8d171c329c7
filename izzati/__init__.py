"""izzati: one plain Python function becomes a real backend."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "2.0.0"

# Names load on first use, so a worker that only needs `background` or a queue does not import
# the web stack (FastAPI, Starlette, uvicorn). Values are the modules that define them.
_EXPORTS = {
    "Backend": "web.backend",
    "Frontend": "client",
    "IzzatiError": "exceptions",
    "Limits": "web.inputs",
    "MemoryQueue": "queues",
    "Queue": "queues",
    "RedisQueue": "queues",
    "UploadedFile": "files",
    "background": "worker",
    "file_return": "web.responses",
    "open_queue": "queues",
    "Job": "client",
    "progress": "jobs",
    "cancelled": "jobs",
    "batched": "batching",
    "multiplexed": "multiplex",
    "model_id": "multiplex",
    "File": "typed",
    "Accept": "typed",
    "ChatRequest": "chat",
    "Usage": "chat",
    "on_device": "devices",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from .batching import batched as batched
    from .chat import ChatRequest as ChatRequest
    from .chat import Usage as Usage
    from .client import Frontend as Frontend
    from .client import Job as Job
    from .devices import on_device as on_device
    from .exceptions import IzzatiError as IzzatiError
    from .files import UploadedFile as UploadedFile
    from .jobs import cancelled as cancelled
    from .jobs import progress as progress
    from .multiplex import model_id as model_id
    from .multiplex import multiplexed as multiplexed
    from .queues import MemoryQueue as MemoryQueue
    from .queues import Queue as Queue
    from .queues import RedisQueue as RedisQueue
    from .queues import open_queue as open_queue
    from .typed import Accept as Accept
    from .typed import File as File
    from .web.backend import Backend as Backend
    from .web.inputs import Limits as Limits
    from .web.responses import file_return as file_return
    from .worker import background as background


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'izzati' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
