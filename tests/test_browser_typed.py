"""The try page of a typed callback in Chromium: one input per parameter built from the types,
defaults filled in, descriptions shown, required marked, and a 422's messages beside their fields."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from izzati import Backend
from tests.callbacks import typed
from tests.test_browser import Watched, browser, open_page, screenshots

__all__ = ["browser", "open_page", "screenshots"]

pytestmark = pytest.mark.browser

Serve = Callable[..., str]
DOCS_SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def test_the_form_is_built_from_the_types(serve: Serve, open_page: Callable[[str], Watched]) -> None:
    url = serve(Backend(typed.predict, title="Predictor", access_log=False).app)
    watched = open_page(url + "/")
    page = watched.page
    assert page.locator("#classic-text").is_hidden() and page.locator("#classic-files").is_hidden()
    n = page.locator("#in-n")
    assert n.get_attribute("type") == "number" and n.get_attribute("step") == "1"
    assert page.locator('.input[data-name="n"] label .required').inner_text() == "*"
    ratio = page.locator("#in-ratio")
    assert (ratio.get_attribute("min"), ratio.get_attribute("max"), ratio.get_attribute("step")) == ("0", "1", "any")
    assert ratio.input_value() == "0.5"
    assert page.locator('.input[data-name="ratio"] .hint').inner_text() == "how much"
    assert page.locator("#in-flag").get_attribute("type") == "checkbox" and not page.locator("#in-flag").is_checked()
    assert page.locator("#in-mode option").all_inner_texts() == ["fast", "exact"]
    assert page.locator("#in-mode").input_value() == "fast"
    assert page.locator("#in-color").input_value() == "red"
    assert page.locator("#in-tags").evaluate("e => e.tagName") == "TEXTAREA"
    page.fill("#in-n", "3")
    page.fill("#in-tags", "a\nb")
    page.check("#in-flag")
    page.select_option("#in-mode", "exact")
    page.click("#send")
    reply = watched.reply_json()
    assert reply["n"] == [3, "int"] and reply["tags"] == [["a", "b"], "list"]
    assert reply["flag"] == [True, "bool"] and reply["mode"] == ["exact", "str"]
    assert (
        "izzati send" in page.locator("#command").inner_text()
        and "--stream" not in page.locator("#command").inner_text()
    )
    assert watched.errors == []


def test_a_422_shows_each_message_beside_its_field(
    serve: Serve, open_page: Callable[[str], Watched], screenshots: Path
) -> None:
    url = serve(Backend(typed.predict, title="Predictor", access_log=False).app)
    watched = open_page(url + "/")
    page = watched.page
    page.fill("#in-ratio", "5")
    page.click("#send")
    page.locator('.input[data-name="n"] .field-error').wait_for(state="visible")
    assert page.locator('.input[data-name="n"] .field-error').inner_text() == "Field required"
    assert (
        page.locator('.input[data-name="ratio"] .field-error').inner_text() == "Input should be less than or equal to 1"
    )
    assert page.locator('.input[data-name="mode"] .field-error').is_hidden()
    assert json.loads(page.locator("#json").inner_text())["error"] == "invalid_input"
    shot = watched.shot("try-typed-422")
    if os.environ.get("IZZATI_DOC_SCREENSHOTS"):  # refresh the docs' screenshot: IZZATI_DOC_SCREENSHOTS=1
        shutil.copy(shot, DOCS_SHOTS / "try-typed.png")
    # the errors of the last reply go once the next is sent
    page.fill("#in-n", "1")
    page.fill("#in-ratio", "0.5")
    page.click("#send")
    page.wait_for_function("document.getElementById('json').textContent.includes('\"n\"')")
    assert page.locator(".field-error:visible").count() == 0
    # the 422 itself is the only error the page met (Chromium logs it on the console too)
    assert len(watched.errors) == 2 and all("422" in error for error in watched.errors), watched.errors


def test_file_inputs_accept_what_the_parameter_accepts(
    serve: Serve, open_page: Callable[[str], Watched], tmp_path: Path
) -> None:
    url = serve(Backend(typed.image_size, access_log=False).app)
    watched = open_page(url + "/")
    page = watched.page
    image = page.locator("#in-image")
    assert image.get_attribute("accept") == "image/*,.png" and image.get_attribute("multiple") is None
    assert page.locator("#in-extra").get_attribute("multiple") is not None
    picture = tmp_path / "cat.png"
    picture.write_bytes(b"png")
    note = tmp_path / "note.txt"
    note.write_text("hi")
    page.set_input_files("#in-image", str(picture))
    page.set_input_files("#in-extra", [str(note), str(note)])
    page.set_input_files("#in-note", str(note))
    page.click("#send")
    assert watched.reply_json() == {"image": ["cat.png", 3], "extra": ["note.txt", "note.txt"], "note": "hi"}
    assert "-f image=cat.png" in page.locator("#command").inner_text()
    assert watched.errors == []


def test_izzati_js_describes_the_inputs(serve: Serve, open_page: Callable[[str], Watched]) -> None:
    url = serve(Backend(typed.predict, access_log=False).app)
    watched = open_page(url + "/")
    fields = watched.page.evaluate("new Izzati('/').describe()")
    assert [(f["name"], f["type"], f["required"], f["multiple"]) for f in fields][:3] == [
        ("n", "integer", True, False),
        ("name", "string", False, False),
        ("tags", "string", False, True),
    ]
    ratio = next(f for f in fields if f["name"] == "ratio")
    assert (ratio["minimum"], ratio["maximum"], ratio["default"], ratio["description"]) == (0, 1, 0.5, "how much")
    assert next(f for f in fields if f["name"] == "color")["choices"] == ["red", "blue"]
    assert watched.errors == []


def test_izzati_js_describes_the_route_its_url_names(serve: Serve, open_page: Callable[[str], Watched]) -> None:
    url = serve(Backend({"/": typed.classify, "/predict": typed.predict}, access_log=False).app)
    watched = open_page(url + "/")
    routed = watched.page.evaluate("new Izzati('/predict').describe()")
    assert [f["name"] for f in routed][:2] == ["n", "name"]
    root = watched.page.evaluate("new Izzati('/').describe()")
    assert [f["name"] for f in root] == ["text", "top"]
    assert watched.errors == []
