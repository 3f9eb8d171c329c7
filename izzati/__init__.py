"""izzati: one plain Python function becomes a real backend."""

from __future__ import annotations

from .backend import Backend
from .background import background
from .client import Frontend
from .exceptions import IzzatiError
from .files import UploadedFile, file_return
from .inputs import Limits
from .queues import MemoryQueue, Queue, open_queue

__version__ = "2.0.0"

__all__ = [
    "Backend",
    "Frontend",
    "IzzatiError",
    "Limits",
    "MemoryQueue",
    "Queue",
    "UploadedFile",
    "__version__",
    "background",
    "file_return",
    "open_queue",
]
