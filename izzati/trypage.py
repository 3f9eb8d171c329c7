"""The try-it page at `GET /` for browsers, and the browser client `/izzati.js`."""

from __future__ import annotations

from fastapi import FastAPI

__all__ = ["add_try_page"]


def add_try_page(app: FastAPI) -> None:
    """Serve the try-it page to browsers at `GET /` and the client at `/izzati.js`."""
