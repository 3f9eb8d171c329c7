"""The clients read a typed service's inputs: `izzati send --inputs`, the check before sending,
named files, a streamed reply printed as it comes, and `Frontend.describe()`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from izzati import Backend, Frontend
from tests.callbacks import echo_all, typed
from tests.test_cli import izzati, one_error_line

Serve = Callable[..., str]


def _url(serve: Serve, callback: Callable[..., object]) -> str:
    return serve(Backend(callback, access_log=False, metrics=False).app) + "/"


def test_inputs_are_printed_from_the_schema(serve: Serve, tmp_path: Path) -> None:
    result = izzati("send", _url(serve, typed.predict), "--inputs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["n", "integer", "required"]
    assert "one of fast, exact; default 'fast'" in result.stdout
    assert "ratio            number     0 <= value <= 1; default 0.5 — how much" in result.stdout
    classic = izzati("send", _url(serve, echo_all.handle), "--inputs", cwd=tmp_path)
    assert "its callback is (text, data)" in classic.stdout


def test_send_checks_names_and_types_before_sending(serve: Serve, tmp_path: Path) -> None:
    url = _url(serve, typed.predict)
    refused = izzati("send", url, "n=x", "mode=slow", "colour=red", cwd=tmp_path)
    assert refused.returncode == 2
    line = one_error_line(refused)
    assert "colour: no such input" in line and "n='x': not a whole number" in line
    assert "mode='slow': one of fast, exact" in line
    assert refused.stdout == ""
    sent = izzati("send", url, "n=3", "tags=a", "tags=b", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["tags"] == [["a", "b"], "list"]


def test_files_go_by_input_name(serve: Serve, tmp_path: Path) -> None:
    url = _url(serve, typed.image_size)
    image = tmp_path / "cat.png"
    image.write_bytes(b"png")
    missing = izzati("send", url, cwd=tmp_path)
    assert missing.returncode == 2 and "image: required (file)" in one_error_line(missing)
    sent = izzati("send", url, "-f", f"image={image}", "-f", f"extra={image}", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout) == {"image": ["cat.png", 3], "extra": ["cat.png"], "note": None}


def test_a_stream_is_printed_item_by_item_without_the_flag(serve: Serve, tmp_path: Path) -> None:
    result = izzati("send", _url(serve, typed.tokens), "text=a", "count=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['{"index":0,"token":"a0"}', '{"index":1,"token":"a1"}']
    assert not list(tmp_path.glob("izzati-reply*"))  # nothing saved to a file


def test_frontend_describe_and_named_files(serve: Serve) -> None:
    frontend = Frontend(_url(serve, typed.image_size))
    fields = frontend.describe()
    assert fields is not None
    assert [(f["name"], f["type"], f["required"], f["multiple"]) for f in fields] == [
        ("image", "file", True, False),
        ("extra", "file", False, True),
        ("note", "file", False, False),
    ]
    assert fields[0]["accept"] == ["image/*", ".png"]
    reply = frontend.send(files={"image": ("a.png", b"12345", "image/png"), "extra": [("b.txt", b"b")]})
    assert reply == {"image": ["a.png", 5], "extra": ["b.txt"], "note": None}
    assert Frontend(_url(serve, echo_all.handle)).describe() is None


def test_a_route_is_described_and_checked_by_its_own_inputs(serve: Serve, tmp_path: Path) -> None:
    """With several routes, `URL/predict` is the `/predict` route's callback, not `/`'s."""
    base = serve(Backend({"/": typed.classify, "/predict": typed.predict}, access_log=False, metrics=False).app)
    fields = Frontend(base + "/predict").describe()
    assert fields is not None and fields[0]["name"] == "n"
    root = Frontend(base + "/").describe()
    assert root is not None and [f["name"] for f in root] == ["text", "top"]
    listed = izzati("send", base + "/predict", "--inputs", cwd=tmp_path)
    assert listed.stdout.splitlines()[1].split() == ["n", "integer", "required"], listed.stdout
    sent = izzati("send", base + "/predict", "n=3", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["n"] == [3, "int"]
    refused = izzati("send", base + "/predict", "n=x", cwd=tmp_path)
    assert refused.returncode == 2 and "n='x': not a whole number" in one_error_line(refused)
