"""The try page of a service with several routes, in Chromium: a selector of the routes; the form
(typed from /openapi.json, or key/value rows) and the posting follow the route chosen."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from izzati import Backend
from tests.callbacks import typed
from tests.test_browser import Watched, browser, handle, open_page, screenshots, send

__all__ = ["browser", "open_page", "screenshots"]

pytestmark = pytest.mark.browser

Serve = Callable[..., str]


def test_the_route_selector_switches_form_and_target(serve: Serve, open_page: Callable[[str], Watched]) -> None:
    url = serve(Backend({"/": handle, "/predict": typed.predict}, access_log=False).app)
    watched = open_page(url + "/")
    page = watched.page
    assert page.locator("#route option").all_inner_texts() == ["/", "/predict"]
    assert page.locator("#route").input_value() == "/"
    assert page.locator("#classic-text").is_visible() and page.locator("#typed").is_hidden()
    page.select_option("#route", "/predict")
    assert page.locator("#classic-text").is_hidden() and page.locator("#typed").is_visible()
    assert page.locator("#in-n").get_attribute("type") == "number"
    assert page.locator("#post-path").inner_text() == "POST /predict"
    page.fill("#in-n", "3")
    page.click("#send")
    reply = watched.reply_json()
    assert reply["n"] == [3, "int"]  # the typed callback of /predict answered
    assert f"izzati send {url}/predict" in page.locator("#command").inner_text()
    watched.shot("routes-typed")
    # back to /: the key/value form again, posting to /
    page.select_option("#route", "/")
    assert page.locator("#typed").is_hidden() and page.locator("#in-n").count() == 0
    assert page.locator("#result").is_hidden()
    send(watched, [("name", "alice")])
    assert watched.reply_json() == {"text": {"name": "alice"}, "files": []}
    assert f"izzati send {url}/ " in page.locator("#command").inner_text()
    assert watched.errors == []


def test_one_route_has_no_selector(serve: Serve, open_page: Callable[[str], Watched]) -> None:
    url = serve(Backend({"/predict": typed.predict}, access_log=False).app)
    watched = open_page(url + "/")
    page = watched.page
    assert page.locator("#route-box").is_hidden()
    assert page.locator("#post-path").inner_text() == "POST /predict"
    page.fill("#in-n", "2")
    page.click("#send")
    assert watched.reply_json()["n"] == [2, "int"]
    assert watched.errors == []
