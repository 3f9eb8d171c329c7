"""Importing a user's callable from a `"package.module:function"` string, with precise errors."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from .exceptions import ConfigError
from .invoker import signature_problem

__all__ = ["import_callable", "extend_path", "check_signature"]


def extend_path(path: str | Iterable[str]) -> list[str]:
    """Put directories (a PYTHONPATH-style string or a list) first on `sys.path`; return them."""
    entries = path.split(os.pathsep) if isinstance(path, str) else list(path)
    added = [os.path.abspath(entry) for entry in entries if entry]
    for entry in reversed(added):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    return added


def import_callable(spec: str, setting: str = "callable") -> Callable[..., Any]:
    """Import `module:attribute` (dots allowed after the colon) and check it is callable."""
    where = f"{setting}={spec!r}"
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"{where}: expected 'module:function', for example 'mycode:handle'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ConfigError(
                f"{where}: module {module_name!r} not found (looked in the current directory, "
                "IZZATI_CALLBACK_PATH and sys.path)"
            ) from None
        raise ConfigError(f"{where}: importing {module_name!r} failed: {exc}") from None
    except Exception as exc:
        raise ConfigError(f"{where}: importing {module_name!r} raised {type(exc).__name__}: {exc}") from exc
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(f"{where}: module {module_name!r} has no attribute {attribute!r}") from None
    if not callable(target):
        raise ConfigError(f"{where}: {attribute!r} is a {type(target).__name__}, not callable")
    return target  # type: ignore[no-any-return]


def check_signature(
    func: Callable[..., Any], args: Iterable[Any], kwargs: dict[str, Any], *, shape: str, setting: str, spec: str
) -> None:
    """Raise ConfigError when `func` cannot be called with `args`/`kwargs` as `shape` says."""
    problem = signature_problem(func, args, kwargs, shape)
    if problem is not None:
        raise ConfigError(f"{setting}={spec!r}: wrong signature: {problem}")
