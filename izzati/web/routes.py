"""Several callbacks on several paths: `Backend({"/": echo, "/classify": Classifier})`.

Each path is a route with its own `Invoker` and `Endpoint`: its own setup and teardown (once per
server process), batching, streaming and limits, and its own operation in `/openapi.json`. The
table maps a path to its endpoint (which holds its invoker).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["RESERVED", "route_callbacks", "parse_routes"]

RESERVED = ("/jobs", "/health", "/ready", "/metrics", "/openapi.json", "/docs", "/redoc", "/izzati.js")
"""Paths of the service itself: no route may take them (or a path under them)."""

_PATH = re.compile(r"/([A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*)?")


def _check_path(path: str) -> str:
    if not isinstance(path, str) or not _PATH.fullmatch(path):
        raise ValueError(f"route {path!r}: a path is '/' or '/name' (letters, digits, . _ ~ -, with / between parts)")
    taken = next((reserved for reserved in RESERVED if path == reserved or path.startswith(reserved + "/")), None)
    if taken is not None:
        raise ValueError(f"route {path!r}: {taken} is the service's own path")
    return path


def route_callbacks(callback: Callable[..., Any] | Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """The routes a `Backend` serves: one callback at `/`, or a mapping of paths to callbacks."""
    if not isinstance(callback, Mapping):
        return {"/": callback}
    if not callback:
        raise ValueError("no routes: give at least one path and its callback")
    return {_check_path(path): target for path, target in callback.items()}


def parse_routes(spec: str) -> dict[str, str]:
    """`/=mod:echo,/classify=mod:Classifier` as `{path: "module:name"}` (IZZATI_ROUTES)."""
    routes: dict[str, str] = {}
    for part in (part.strip() for part in spec.split(",")):
        if not part:
            continue
        path, sep, target = part.partition("=")
        if not sep or not target.strip():
            raise ValueError(f"{part!r}: each route is PATH=module:callable, e.g. /classify=mymodel:Classifier")
        path = _check_path(path.strip())
        if path in routes:
            raise ValueError(f"{path!r} is named twice")
        routes[path] = target.strip()
    if not routes:
        raise ValueError("no routes: e.g. IZZATI_ROUTES=/=mymodule:echo,/classify=mymodel:Classifier")
    return routes
