"""The try-it page and `/izzati.js` over HTTP: Accept negotiation, content types, switches."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from izzati import Backend
from izzati.web.middleware import wants_html
from izzati.web.trypage import static_file

CHROME_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
    "application/signed-exchange;v=b3;q=0.7"
)
STATIC = Path(__file__).resolve().parent.parent / "izzati" / "web" / "static"


def handler(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
    """Echo the request."""
    return {"text": text, "files": [upload.filename for upload in data]}


Client = Callable[..., httpx.Client]


def page(test_client: httpx.Client) -> str:
    response = test_client.get("/", headers={"Accept": CHROME_ACCEPT})
    assert response.status_code == 200
    return response.text


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (CHROME_ACCEPT, True),
        ("text/html", True),
        ("TEXT/HTML; charset=utf-8", True),
        ("application/xhtml+xml", True),
        ("text/html;q=0", False),
        ("text/html;q=0.0, application/json", False),
        ("*/*", False),
        ("application/json", False),
        ("", False),
        ("text/htmlx", False),
    ],
)
def test_wants_html(accept: str, expected: bool) -> None:
    assert wants_html(accept) is expected


def test_browser_gets_the_page(client_for: Client) -> None:
    test_client = client_for(Backend(handler, title="Photo tagger").app)
    response = test_client.get("/", headers={"Accept": CHROME_ACCEPT})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["vary"] == "Accept"
    assert response.headers["x-content-type-options"] == "nosniff"
    text = response.text
    assert "<title>Photo tagger · try it</title>" in text
    assert f"izzati backend for {__name__}:handler" in text
    assert '<a href="/docs">API docs</a>' in text
    assert '<script src="/izzati.js"></script>' in text
    assert 'data-endpoint="/"' in text


def test_page_is_self_contained(client_for: Client) -> None:
    test_client = client_for(Backend(handler).app)
    text = page(test_client)
    # nothing from another origin: no CDN, no web fonts, no absolute URLs at all
    assert not re.search(r"(?i)(https?:)?//[a-z0-9]", text.replace("</", ""))
    assert set(re.findall(r'(?:src|href)="([^"]*)"', text)) == {"/izzati.js", "/docs", "data:,"}


def test_inline_script_and_style_are_allowed_by_the_csp(client_for: Client) -> None:
    test_client = client_for(Backend(handler).app)
    response = test_client.get("/", headers={"Accept": "text/html"})
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    for tag, count in (("script", 2), ("style", 1)):  # the page's script and the chat box's
        bodies = re.findall(rf"<{tag}>(.*?)</{tag}>", response.text, flags=re.S)
        assert len(bodies) == count, tag
        for body in bodies:
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in csp, tag


def test_title_and_summary_are_escaped(client_for: Client) -> None:
    test_client = client_for(Backend(handler, title='<img src=x onerror="alert(1)"> {{script}}').app)
    text = page(test_client)
    assert "<img src=x" not in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; {{script}}" in text


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/html;q=0"])
def test_api_clients_still_get_405_json(accept: str | None, client_for: Client) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    test_client = client_for(Backend(handler).app)
    response = test_client.get("/", headers=headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "method_not_allowed", "detail": "Method Not Allowed"}


def test_put_root_is_still_405_allow_post(client_for: Client) -> None:
    test_client = client_for(Backend(handler).app)
    response = test_client.put("/", headers={"Accept": "text/html"})
    assert (response.status_code, response.headers["allow"]) == (405, "POST")


def test_post_is_unaffected_by_accept_html(client_for: Client) -> None:
    test_client = client_for(Backend(handler).app)
    response = test_client.post(
        "/", data={"name": "alice"}, files=[("file", ("a.txt", b"hi"))], headers={"Accept": CHROME_ACCEPT}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"text": {"name": "alice"}, "files": ["a.txt"]}


def test_izzati_js_is_served_from_the_package(client_for: Client) -> None:
    test_client = client_for(Backend(handler).app)
    response = test_client.get("/izzati.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.content == static_file("izzati.js") == (STATIC / "izzati.js").read_bytes()
    assert b"class Izzati" in response.content
    again = test_client.get("/izzati.js", headers={"If-None-Match": response.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")


def test_try_page_false_serves_nothing(client_for: Client) -> None:
    test_client = client_for(Backend(handler, try_page=False).app)
    response = test_client.get("/", headers={"Accept": CHROME_ACCEPT})
    assert (response.status_code, response.headers["allow"]) == (405, "POST")
    assert response.json()["error"] == "method_not_allowed"
    assert test_client.get("/izzati.js").status_code == 404


def test_routes_stay_out_of_the_openapi_schema(client_for: Client) -> None:
    test_client = client_for(Backend(handler).app)
    paths = test_client.get("/openapi.json").json()["paths"]
    assert "/izzati.js" not in paths
    assert set(paths["/"]) == {"post"}


def test_page_and_script_load_without_the_api_key(client_for: Client) -> None:
    test_client = client_for(Backend(handler, api_key="s3cret").app)
    assert 'id="api-key"' in page(test_client)
    assert test_client.get("/izzati.js").status_code == 200
    assert test_client.post("/", data={"a": "1"}).status_code == 401
    authorized = test_client.post("/", data={"a": "1"}, headers={"Authorization": "Bearer s3cret"})
    assert authorized.json() == {"text": {"a": "1"}, "files": []}


def test_mounted_under_a_prefix_links_stay_inside_it(client_for: Client) -> None:
    outer = Starlette(routes=[Mount("/svc", app=Backend(handler).app)])
    text = page_at(client_for(outer), "/svc/")
    assert 'data-endpoint="/svc/"' in text
    assert '<script src="/svc/izzati.js"></script>' in text
    assert '<a href="/svc/docs">API docs</a>' in text


def page_at(test_client: httpx.Client, path: str) -> str:
    response = test_client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 200, response.text
    return response.text
