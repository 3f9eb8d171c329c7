"""The public package: every exported name, whatever was imported before it, and the layout rules."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import izzati

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "izzati"
WEB_STACK = ("fastapi", "starlette", "uvicorn")


def _modules() -> list[str]:
    # __main__ modules run their command when imported
    return [
        info.name for info in pkgutil.walk_packages(izzati.__path__, "izzati.") if not info.name.endswith("__main__")
    ]


def test_exports_are_what_they_name_after_every_module_is_imported() -> None:
    # A submodule named like an export (once: izzati/background.py) replaced the export on the
    # package as soon as something imported it: `from izzati import background` gave a module.
    for name in _modules():
        importlib.import_module(name)
    for name in izzati.__all__:
        value = getattr(izzati, name)
        assert not isinstance(value, type(izzati)), f"izzati.{name} is a module"
    assert izzati.background.__module__ == "izzati.worker"
    assert callable(izzati.background)


def test_background_is_the_function_in_a_callback_of_the_service(tmp_path: Path) -> None:
    # what `python -m app` does before it imports the user's callback
    code = (
        "import izzati.launch, izzati.web.backend\n"
        "from izzati import background\n"
        "p, q = background(lambda q: q.put('ran'))\n"
        "print(q.get(timeout=10)); p.join(10)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "ran", out.stderr


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_web_package_imports_the_web_stack() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.py")
        if "web" not in path.relative_to(PACKAGE).parts and _imports(path) & set(WEB_STACK)
    ]
    assert offenders == []


def test_modules_are_short() -> None:
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 300}
    assert long == {}


def test_every_module_declares_its_public_names() -> None:
    missing = [name for name in _modules() if "__all__" not in vars(importlib.import_module(name))]
    assert missing == []


def test_a_worker_loads_no_web_stack() -> None:
    code = (
        "import sys\n"
        "from app.main import main\n"
        "main(['worker', '--help'])\n"
        "import izzati.launch, izzati.worker, izzati.jobs.runner\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {WEB_STACK!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
