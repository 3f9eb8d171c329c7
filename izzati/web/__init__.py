"""Everything that speaks HTTP: `Backend`, its ASGI app, the endpoint, wire parsing, responses,
middleware, probes, job routes, the try-it page and the uvicorn server.

The only part of izzati that imports Starlette, FastAPI or uvicorn; it is imported on first use
of `izzati.Backend`, so a worker process never loads it.
"""

__all__: list[str] = []
