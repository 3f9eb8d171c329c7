"""scripts/test, the CI entry point: its checks can fail (a failed install, a docs warning)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = (ROOT / "scripts" / "test").read_text()


def _function(name: str) -> str:
    found = re.search(rf"^{name}\(\) \{{\n.*?^\}}\n", SCRIPT, re.M | re.S)
    assert found, f"scripts/test defines no {name}()"
    return found.group(0)


def _bash(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + code], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_a_failed_pip_install_fails_the_script(tmp_path: Path) -> None:
    # `pip install ... | grep -v WARNING || true` threw the install's failure away
    pip_quietly = _function("pip_quietly")
    failed = _bash(pip_quietly + "pip_quietly install /nonexistent/izzati-x\necho went on\n", tmp_path)
    assert failed.returncode != 0
    assert "went on" not in failed.stdout
    # an install with nothing to print but the filtered line goes on (grep's "no line left" is no failure)
    ok = _bash(pip_quietly + "pip_quietly install pip\necho went on\n", tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "went on" in ok.stdout


def _mkdocs_line() -> str:
    lines = [line for line in SCRIPT.splitlines() if "mkdocs build" in line and not line.lstrip().startswith("#")]
    assert len(lines) == 1, lines
    return lines[0].split("  #")[0]


def test_the_docs_check_fails_on_a_broken_anchor(tmp_path: Path) -> None:
    # `--quiet` hid the warnings that --strict counts: a broken anchor passed CI
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    built = _bash(_mkdocs_line(), tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    page = tmp_path / "docs" / "index.md"
    page.write_text(page.read_text() + "\nSee [nowhere](#no-such-anchor-here).\n")
    broken = _bash(_mkdocs_line(), tmp_path)
    assert broken.returncode != 0
    assert "no-such-anchor-here" in broken.stderr
