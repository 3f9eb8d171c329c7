"""Every setting as text: `izzati settings` / `python -m app --help`, `.env.example`, the docs'
settings table; each lists `Settings` in order."""

from __future__ import annotations

import json
import textwrap

from .settings import ENV_PREFIX, Settings

__all__ = ["rows", "variables", "settings_help", "env_example"]


def rows() -> list[tuple[str, str, str]]:
    """Each setting as `(field name, default as written in .env, description)`."""
    found = []
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        shown = "" if default is None else default if isinstance(default, str) else json.dumps(default)
        found.append((name, shown, field.description or ""))
    return found


def variables() -> list[tuple[str, str, str]]:
    """Each setting as `(IZZATI_NAME, default, description)`, for --help and .env.example."""
    return [(ENV_PREFIX + name.upper(), default, description) for name, default, description in rows()]


def settings_help() -> str:
    """Every setting with its default and meaning, as `izzati settings` and `python -m app --help` print it."""
    lines = ["Settings come from IZZATI_* environment variables or a .env file in the working directory:", ""]
    for name, default, description in variables():
        lines.append(f"  {name}={default}")
        lines.extend(textwrap.wrap(description, 90, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)


def env_example() -> str:
    """The text of `.env.example`: every setting, commented out, with its default and meaning."""
    lines = [
        "# izzati settings: copy to .env (cp .env.example .env), then uncomment and edit what you change.",
        "# Every line shows the default; `izzati settings` (or `python -m app --help`) prints the same list.",
        "# docker-compose.yml sets IZZATI_QUEUE_URL=redis://redis:6379/0 for its services itself, and",
        "# defaults IZZATI_CALLBACK / IZZATI_WORKER to the examples in ./callbacks; its workers serve their",
        "# metrics on IZZATI_METRICS_PORT=9100 (for `--profile monitoring`), never published.",
        "# Regenerate: python -c 'from izzati.settingshelp import env_example as e; print(e(), end=\"\")' \\",
        "#   > .env.example",
        "",
    ]
    for name, default, description in variables():
        lines += [f"# {description}", f"# {name}={default}", ""]
    return "\n".join(lines).rstrip() + "\n"
