"""The try-it page at `GET /` for browsers, and the browser client `/izzati.js`."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Sequence
from importlib import resources

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import __version__
from ..fields import describe_inputs
from .middleware import wants_html

__all__ = ["add_try_page", "static_file"]

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def static_file(name: str) -> bytes:
    """The bytes of a file shipped in `izzati/web/static/` (`izzati.js`, `try.html`, ...)."""
    return resources.files(__package__ or "izzati.web").joinpath("static", name).read_bytes()


def _inline(name: str) -> tuple[str, str]:
    """A static file's text for a `<script>`/`<style>` element, and its CSP hash source."""
    text = static_file(name).decode("utf-8").replace("</", "<\\/")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return text, f"'sha256-{digest}'"


def add_try_page(app: FastAPI, chat_models: Sequence[str] = (), routes: Sequence[str] = ("/",)) -> None:
    """Serve the try-it page to browsers at `GET /` and the client at `/izzati.js`; with
    `chat_models` the page has a chat box that streams from `/v1/chat/completions`; with several
    `routes` (the callbacks' paths) a selector picks the route the form is for and posts to.

    The page is one HTML document (its CSS and JS inline, allowed by hash in its
    Content-Security-Policy) plus `/izzati.js`: nothing else to fetch, nothing external, so it
    loads the same behind an API key. `GET /` from anything that does not ask for HTML (curl,
    API clients) still gets the 405 JSON error with `Allow: POST`. The routes stay out of the
    OpenAPI schema.
    """
    template = static_file("try.html").decode("utf-8")
    script, script_hash = _inline("try.js")
    chat_script, chat_hash = _inline("chat.js")
    style, style_hash = _inline("try.css")
    csp = (
        f"default-src 'none'; script-src 'self' {script_hash} {chat_hash}; style-src {style_hash}; "
        "img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; base-uri 'none'; "
        "frame-ancestors 'self'"
    )
    client = static_file("izzati.js")
    described: list[str] = []  # each route's typed inputs (None: classic) as JSON, read from the schema once

    def inputs() -> str:
        if not described:
            document = app.openapi()
            fields = {path: describe_inputs(document, path) for path in routes}
            described.append(json.dumps(fields, ensure_ascii=False).replace("</", "<\\/"))
        return described[0]

    client_etag = '"' + hashlib.sha256(client).hexdigest()[:20] + '"'

    async def page(request: Request) -> Response:
        if not wants_html(request.headers.get("accept", "")):
            raise HTTPException(405, headers={"Allow": "POST", "Vary": "Accept"})
        root_path = request.scope.get("root_path", "").rstrip("/")
        values = {
            "title": html.escape(app.title),
            "summary": html.escape(app.summary or ""),
            "base": html.escape(root_path + "/"),
            "docs_link": f'<a href="{html.escape(root_path + app.docs_url)}">API docs</a>' if app.docs_url else "",
            "version": html.escape(__version__),
            "inputs": inputs(),
            "style": style,
            "script": script,
            "chat_script": chat_script,
            "chat": html.escape(",".join(chat_models)),
        }
        return Response(
            _PLACEHOLDER.sub(lambda match: values[match.group(1)], template),
            media_type="text/html; charset=utf-8",
            headers={
                "Vary": "Accept",
                "Cache-Control": "no-cache",
                "Content-Security-Policy": csp,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    async def izzati_js(request: Request) -> Response:
        headers = {"ETag": client_etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        if client_etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(client, media_type="text/javascript; charset=utf-8", headers=headers)

    # Appended after `POST /`, so a PUT / still meets the POST route first: 405 with Allow: POST.
    app.router.routes.append(Route("/", page, methods=["GET"], include_in_schema=False))
    app.router.routes.append(Route("/izzati.js", izzati_js, methods=["GET"], include_in_schema=False))
