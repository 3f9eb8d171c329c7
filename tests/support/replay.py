"""The suite's hypothesis profile: a failure found once is replayed, here and in CI.

Examples that failed are kept in `.hypothesis/examples` at the repository's root (gitignored), whatever
the working directory (`$HYPOTHESIS_STORAGE_DIRECTORY` moves it), so the next run tries them first; each
failure also prints its `@reproduce_failure(...)` blob, which replays it on a machine without the
database (CI). `scripts/test` picks and prints a `--hypothesis-seed` too.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

ROOT = Path(__file__).resolve().parent.parent.parent
PROFILE = "izzati"


def examples_dir() -> Path:
    """Where failing examples are kept."""
    return Path(os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY") or ROOT / ".hypothesis") / "examples"


def load_profile() -> None:
    """Register and load the profile (hypothesis's own "ci" profile would keep no database)."""
    settings.register_profile(PROFILE, database=DirectoryBasedExampleDatabase(examples_dir()), print_blob=True)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", PROFILE))
