"""The `Izzati-Model` header: which model of a multiplexed callback a request is for."""

from __future__ import annotations

from starlette.types import Scope

from ..multiplex import valid_model_id

__all__ = ["requested_model"]

_HEADER = b"izzati-model"


def requested_model(scope: Scope) -> str | None:
    """The model id the request names in its `Izzati-Model` header (None: none); `ModelRequired`
    (400) when the header cannot be an id."""
    for name, value in scope["headers"]:
        if name == _HEADER:
            return valid_model_id(value.decode("latin-1"))
    return None
