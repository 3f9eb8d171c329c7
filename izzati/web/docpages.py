"""`/docs` (Swagger UI) and `/redoc` (ReDoc) with their assets served from this service, so they
work with no internet.

The assets come from the installed `fastapi-offline` package: the one PyPI package that bundles
both Swagger UI and ReDoc (swagger-ui-bundle ships Swagger UI 4 only, and last changed in 2023),
kept up to date with FastAPI, MIT-licensed, with no dependency but FastAPI. Only its four static
files are used, through `importlib.resources`.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

__all__ = ["add_doc_pages", "ASSETS"]

ASSETS = "/docs/assets"

_MEDIA_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}


# nothing leaves the service: ReDoc's footer logo (cdn.redoc.ly) and the like are refused by the
# browser itself, before any request; the pages' own inline scripts and styles are allowed
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)


def _offline(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = _CSP
    return page


def _asset(name: str) -> bytes:
    return resources.files("fastapi_offline").joinpath("static", name).read_bytes()


def add_doc_pages(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve Swagger UI at `docs_url` and ReDoc at `redoc_url`, every asset from this service."""
    cache: dict[str, bytes] = {}
    oauth2_redirect = f"{docs_url}/oauth2-redirect"

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def swagger(request: Request) -> HTMLResponse:
        base = root(request)
        return _offline(
            get_swagger_ui_html(
                openapi_url=f"{base}{app.openapi_url}",
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=f"{base}{oauth2_redirect}",
                swagger_js_url=f"{base}{ASSETS}/swagger-ui-bundle.js",
                swagger_css_url=f"{base}{ASSETS}/swagger-ui.css",
                swagger_favicon_url=f"{base}{ASSETS}/favicon.png",
                # no validator badge: Swagger UI would fetch it from validator.swagger.io
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    async def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return _offline(
            get_redoc_html(
                openapi_url=f"{base}{app.openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{base}{ASSETS}/redoc.standalone.js",
                redoc_favicon_url=f"{base}{ASSETS}/favicon.png",
                with_google_fonts=False,
            )
        )

    async def redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        media_type = _MEDIA_TYPES.get(name)
        if media_type is None:
            raise HTTPException(404)
        if name not in cache:
            cache[name] = _asset(name)
        return Response(cache[name], media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})

    for path, endpoint in ((docs_url, swagger), (redoc_url, redoc), (oauth2_redirect, redirect)):
        app.router.routes.append(Route(path, endpoint, methods=["GET"], include_in_schema=False))
    app.router.routes.append(Route(f"{ASSETS}/{{name}}", asset, methods=["GET"], include_in_schema=False))
