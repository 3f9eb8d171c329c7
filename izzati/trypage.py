"""The try-it page at `GET /` for browsers, and the browser client `/izzati.js`."""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from importlib import resources

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["add_try_page", "wants_html", "static_file", "PAGE_CSP"]

ASSETS_PREFIX = "/_izzati/"
"""Where the page's own CSS and JS are served; `/izzati.js` is served at the root."""

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)
"""The page's Content-Security-Policy: nothing inline, nothing from another origin."""

_MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def static_file(name: str) -> bytes:
    """The bytes of a file shipped in `izzati/static/` (`izzati.js`, `try.html`, ...)."""
    return resources.files("izzati").joinpath("static", name).read_bytes()


def wants_html(accept: str) -> bool:
    """Whether an `Accept` header asks for HTML (a browser navigating), not an API reply."""
    for item in accept.split(","):
        media_type, *params = (part.strip() for part in item.split(";"))
        if media_type.lower() not in ("text/html", "application/xhtml+xml"):
            continue
        quality = next((p.partition("=")[2] for p in params if p.lower().startswith("q=")), "1")
        try:
            if float(quality) > 0:
                return True
        except ValueError:
            return True
    return False


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str

    @classmethod
    def load(cls, name: str) -> _Asset:
        body = static_file(name)
        return cls(body, _MEDIA_TYPES[name[name.rfind(".") :]], '"' + hashlib.sha256(body).hexdigest()[:20] + '"')

    def response(self, request: Request) -> Response:
        headers = {"ETag": self.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


def add_try_page(app: FastAPI) -> None:
    """Serve the try-it page to browsers at `GET /` and the client at `/izzati.js`.

    `GET /` from anything that does not ask for HTML (curl, API clients) still gets the 405
    JSON error with `Allow: POST`. The routes stay out of the OpenAPI schema.
    """
    template = static_file("try.html").decode("utf-8")
    assets = {name: _Asset.load(name) for name in ("try.js", "try.css")}
    client = _Asset.load("izzati.js")

    async def page(request: Request) -> Response:
        if not wants_html(request.headers.get("accept", "")):
            raise HTTPException(405, headers={"Allow": "POST", "Vary": "Accept"})
        return Response(
            _render(template, app, request.scope.get("root_path", "")),
            media_type="text/html; charset=utf-8",
            headers={
                "Vary": "Accept",
                "Cache-Control": "no-cache",
                "Content-Security-Policy": PAGE_CSP,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    async def izzati_js(request: Request) -> Response:
        return client.response(request)

    async def asset(request: Request) -> Response:
        found = assets.get(request.path_params["name"])
        if found is None:
            raise HTTPException(404)
        return found.response(request)

    # After `POST /`: a PUT / still finds the POST route first and answers 405 with Allow: POST.
    app.router.routes.append(Route("/", page, methods=["GET"], include_in_schema=False))
    app.router.routes.append(Route("/izzati.js", izzati_js, methods=["GET"], include_in_schema=False))
    app.router.routes.append(Route(ASSETS_PREFIX + "{name}", asset, methods=["GET"], include_in_schema=False))


def _render(template: str, app: FastAPI, root_path: str) -> str:
    from . import __version__  # not at import time: izzati/__init__ imports this module

    base = root_path.rstrip("/") + "/"
    docs = f'<a href="{html.escape(root_path.rstrip("/") + app.docs_url)}">API docs</a>' if app.docs_url else ""
    values = {
        "title": html.escape(app.title),
        "summary": html.escape(app.summary or ""),
        "base": html.escape(base),
        "docs_link": docs,
        "version": html.escape(__version__),
    }
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    return template
