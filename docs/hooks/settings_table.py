"""MkDocs hook: replace `<!-- settings-table -->` in a page with the table of every IZZATI_* setting.

The rows come from `izzati.settings.variables()`, the same source as `.env.example` and
`izzati settings`, so the page cannot drift from the code. Only `izzati.settingshelp` (and
`izzati.settings`) is imported (pydantic-settings), never the web stack.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

MARKER = "<!-- settings-table -->"
ROOT = Path(__file__).resolve().parents[2]


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def settings_table() -> str:
    """The Markdown table: variable, default, meaning."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the izzati of this checkout, also when not installed
    from izzati.settingshelp import variables

    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, default, description in variables():
        shown = f"`{_cell(default)}`" if default != "" else "(empty)"
        lines.append(f"| `{name}` | {shown} | {_cell(description)} |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, settings_table())
