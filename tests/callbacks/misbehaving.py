"""Callbacks and targets that are wrong in the ways the fail-fast checks name."""

from __future__ import annotations

from typing import Any

NOT_CALLABLE = 42


def one_arg(text: dict[str, Any]) -> None:
    """Cannot take `data`."""


def worker_no_q() -> None:
    """Cannot take `q`."""


def raises(text: dict[str, Any], data: list[Any]) -> None:
    """Always fails."""
    raise RuntimeError("secret detail")
