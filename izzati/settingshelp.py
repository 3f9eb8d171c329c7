"""Every setting as text: `izzati settings` / `python -m app --help`, and `.env.example`."""

from __future__ import annotations

import textwrap

from .settings import Settings

__all__ = ["settings_help", "env_example"]


def settings_help() -> str:
    """Every setting with its default and meaning, as `izzati settings` and `python -m app --help` print it."""
    lines = ["Settings come from IZZATI_* environment variables or a .env file in the working directory:", ""]
    for name, default, description in Settings.variables():
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
    for name, default, description in Settings.variables():
        lines += [f"# {description}", f"# {name}={default}", ""]
    return "\n".join(lines).rstrip() + "\n"
