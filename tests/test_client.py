"""`Frontend`, and the original 1.2.3 client, against a real server."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from izzati import Backend, Frontend, file_return
from tests.callbacks import echo_all

ORIGINAL = Path(
    os.environ.get("IZZATI_ORIGINAL_DIR", Path(__file__).resolve().parent.parent / ".cache" / "izzati-1.2.3")
)


def test_send_text_and_one_file(serve: Callable[..., str], tmp_path: Path) -> None:
    url = serve(Backend(echo_all.handle).app)
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello")
    with open(path, "rb") as f:
        reply = Frontend(url).send(js={"name": "amy", "n": 3}, f=f)
    assert reply["text"] == {"name": "amy", "n": "3"}
    assert [(x["name"], x["filename"], x["size"]) for x in reply["files"]] == [("file", "notes.txt", 5)]


def test_send_nothing_gives_empty_text(serve: Callable[..., str]) -> None:
    assert Frontend(serve(Backend(echo_all.handle).app)).send() == {"text": {}, "files": []}


def test_send_several_files_of_every_kind(serve: Callable[..., str], tmp_path: Path) -> None:
    url = serve(Backend(echo_all.handle).app)
    path = tmp_path / "from_path.bin"
    path.write_bytes(b"123")
    reply = Frontend(url).send(
        js={"tags": ["a", "b"]},
        files=[path, str(path), b"raw", ("named.csv", b"a,b", "text/csv")],
    )
    assert reply["text"] == {"tags": ["a", "b"]}
    assert [(x["filename"], x["size"]) for x in reply["files"]] == [
        ("from_path.bin", 3),
        ("from_path.bin", 3),
        ("file", 3),
        ("named.csv", 3),
    ]
    assert reply["files"][3]["content_type"] == "text/csv"


def test_file_reply_is_bytes(serve: Callable[..., str], tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(os.urandom(100_000))
    url = serve(Backend(lambda text, data: file_return(str(path))).app)
    assert Frontend(url).send(js={"a": "b"}) == path.read_bytes()


def test_error_reply_is_returned_as_json_and_timeout_applies(serve: Callable[..., str]) -> None:
    def callback(text: dict[str, Any], data: list[Any]) -> None:
        raise RuntimeError("x")

    url = serve(Backend(callback).app)
    assert Frontend(url).send()["error"] == "callback_failed"
    response = Frontend(url, timeout=5).request(js={"a": "1"})
    assert response.status_code == 500


def _load_original() -> ModuleType:
    source = ORIGINAL / "izzati" / "frontend.py"
    if not source.exists():
        pytest.fail(
            f"the original izzati 1.2.3 is not at {ORIGINAL}: run scripts/test, or "
            f"pip download --no-deps izzati==1.2.3 and unpack it there"
        )
    spec = importlib.util.spec_from_file_location("izzati_original_frontend", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_original_frontend_talks_to_new_server(serve: Callable[..., str], tmp_path: Path) -> None:
    original = _load_original()
    url = serve(Backend(echo_all.handle).app)
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8jpeg")
    with open(path, "rb") as f:
        reply = original.Frontend(url).send(js={"name": "old client"}, f=f)
    assert reply["text"] == {"name": "old client"}
    assert reply["files"][0]["filename"] == "photo.jpg"
    with open(path, "rb") as f:
        assert original.Frontend(url).send(f=f)["files"][0]["size"] == 6
    assert original.Frontend(url).send(js={"only": "text"})["text"] == {"only": "text"}
    assert original.Frontend(url).send() == {"text": {}, "files": []}


def test_original_frontend_receives_a_file(serve: Callable[..., str], tmp_path: Path) -> None:
    original = _load_original()
    path = tmp_path / "result.txt"
    path.write_bytes(b"file body")
    url = serve(Backend(lambda text, data: file_return(str(path))).app)
    assert original.Frontend(url).send(js={"a": "b"}) == b"file body"
