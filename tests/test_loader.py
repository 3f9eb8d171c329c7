"""Importing a user's callable (`izzati.loader`) with errors that name the setting and the value."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from izzati.exceptions import ConfigError
from izzati.loader import check_signature, extend_path, import_callable


@pytest.fixture
def code_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in [m for m in sys.modules if m.startswith("loadme")]:
        monkeypatch.delitem(sys.modules, name)
    (tmp_path / "loadme.py").write_text(
        "import json\n"
        "def handle(text, data):\n    return text\n"
        "class Box:\n    class Inner:\n        @staticmethod\n        def run(q):\n            return q\n"
        "VALUE = 3\n"
    )
    (tmp_path / "loadme_broken.py").write_text("import not_a_module_anywhere_xyz\n")
    (tmp_path / "loadme_raises.py").write_text("raise RuntimeError('boom at import')\n")
    extend_path(str(tmp_path))
    return tmp_path


def test_extend_path_puts_directories_first_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", ["/somewhere"])
    a, b = tmp_path / "a", tmp_path / "b"
    assert extend_path(f"{a}:{b}:") == [str(a), str(b)]
    extend_path([str(a)])
    assert sys.path == [str(a), str(b), "/somewhere"]


def test_import_callable(code_dir: Path) -> None:
    assert import_callable("loadme:handle", "IZZATI_CALLBACK")({"k": "v"}, []) == {"k": "v"}
    assert import_callable("loadme:Box.Inner.run")("q") == "q"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nocolon", "IZZATI_CALLBACK='nocolon': expected 'module:function', for example 'mycode:handle'"),
        ("loadme:", "IZZATI_CALLBACK='loadme:': expected 'module:function'"),
        ("not_there_xyz:f", "IZZATI_CALLBACK='not_there_xyz:f': module 'not_there_xyz' not found"),
        ("loadme_broken:f", "IZZATI_CALLBACK='loadme_broken:f': importing 'loadme_broken' failed: No module named"),
        ("loadme_raises:f", "IZZATI_CALLBACK='loadme_raises:f': importing 'loadme_raises' raised RuntimeError: boom"),
        ("loadme:missing", "IZZATI_CALLBACK='loadme:missing': module 'loadme' has no attribute 'missing'"),
        ("loadme:VALUE", "IZZATI_CALLBACK='loadme:VALUE': 'VALUE' is a int, not callable"),
    ],
)
def test_import_errors_name_the_setting_and_the_value(code_dir: Path, spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        import_callable(spec, "IZZATI_CALLBACK")
    assert str(caught.value).startswith(message)


def test_check_signature() -> None:
    def target(q: Any, greeting: str) -> None:
        return None

    check_signature(target, (None, "hi"), {}, shape="target(q, *ARGS)", setting="IZZATI_WORKER", spec="m:target")
    with pytest.raises(ConfigError) as caught:
        check_signature(target, (None,), {}, shape="target(q, *ARGS)", setting="IZZATI_WORKER", spec="m:target")
    assert str(caught.value).startswith(
        "IZZATI_WORKER='m:target': wrong signature: (q: 'Any', greeting: 'str') -> 'None' cannot be called as "
        "target(q, *ARGS): missing a required argument: 'greeting'"
    )
