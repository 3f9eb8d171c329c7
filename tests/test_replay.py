"""The hypothesis profile: a failure found once is tried first by the next run, and its blob is printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.processes import ROOT

PROPERTY = r"""
from tests.support.replay import load_profile
load_profile()
from hypothesis import given, strategies as st

tried = []

@given(st.integers())
def test(n):
    tried.append(n)
    assert n < 1000

try:
    test()
except AssertionError as failure:
    print("failed, first tried", tried[0])
    print(*getattr(failure, "__notes__", []), sep="\n")  # what pytest shows under the failure
else:
    print("passed")
"""


def _run(storage: Path) -> str:
    env = {**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": str(storage), "PYTHONPATH": str(ROOT)}
    env.pop("HYPOTHESIS_PROFILE", None)
    out = subprocess.run(
        [sys.executable, "-c", PROPERTY], capture_output=True, text=True, timeout=120, cwd=storage, env=env
    )
    return out.stdout + out.stderr


def test_a_failing_example_is_kept_and_replayed_first(tmp_path: Path) -> None:
    first = _run(tmp_path)
    assert "failed" in first, first
    assert "@reproduce_failure(" in first  # replayable where the database is not (CI)
    assert any((tmp_path / "examples").iterdir())
    # a new process, another random seed: the saved failure comes first (without it: 0, the simplest)
    again = _run(tmp_path)
    assert "failed, first tried 1000" in again, again
