"""/docs and /redoc in Chromium with every request that is not to 127.0.0.1 blocked: the pages
load their assets from the service and render a typed callback's operation and inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Route

from izzati import Backend
from tests.callbacks import typed
from tests.test_browser import browser

__all__ = ["browser"]

pytestmark = pytest.mark.browser

Serve = Callable[..., str]


class Offline:
    """A browser context where only loopback requests go through; the others are recorded and aborted."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.blocked: list[str] = []
        self.errors: list[str] = []
        context.route("**/*", self._route)

    def _route(self, route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost", "::1"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()


@pytest.fixture
def offline(browser: Browser) -> Iterator[Offline]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    yield Offline(context)
    context.close()


def test_swagger_ui_works_offline_and_shows_the_typed_inputs(serve: Serve, offline: Offline) -> None:
    url = serve(Backend(typed.predict, title="Predictor", access_log=False).app)
    page = offline.context.new_page()
    page.on("pageerror", lambda exc: offline.errors.append(str(exc)))
    page.goto(url + "/docs")
    page.locator(".opblock-summary-path", has_text="/").first.wait_for(timeout=20_000)
    assert "Predictor" in page.locator(".title").first.inner_text()
    page.locator(".opblock-post .opblock-summary").first.click()
    body = page.locator(".opblock-post .opblock-body").first
    body.wait_for()
    for media in ("multipart/form-data", "application/x-www-form-urlencoded", "application/json"):
        body.locator(f"option[value='{media}']").first.wait_for(state="attached")
    models = page.locator("section.models").first
    models.wait_for()
    for name in ("PredictInputs", "InvalidInput", "Color"):
        assert name in models.inner_text()
    assert offline.blocked == [] and offline.errors == []


def test_redoc_works_offline(serve: Serve, offline: Offline) -> None:
    url = serve(Backend(typed.predict, title="Predictor", access_log=False).app)
    page = offline.context.new_page()
    page.on("pageerror", lambda exc: offline.errors.append(str(exc)))
    page.goto(url + "/redoc")
    page.get_by_text("how much").first.wait_for(timeout=30_000)  # the description of `ratio`
    assert "Predictor" in page.locator("h1").first.inner_text()
    assert offline.blocked == [] and offline.errors == []
