"""The baseline: a minimal hand-written FastAPI endpoint per workload, uvicorn with 1 worker.

    python bench/targets/fastapi_target.py --port P --workload echo|size|file [--file PATH] [--lean]

With `--lean` (the `fastapi-lean` rows): the leanest FastAPI a user can write for a form, no
dependency machinery per request: an `async def` endpoint that reads `await request.form()` and
calls the same plain callback in Starlette's thread pool (`run_in_threadpool`).

Written the way a FastAPI user would: `Form()` / `UploadFile` parameters (as `Annotated[...]`), a plain `def`
endpoint (run in Starlette's thread pool, like izzati's plain callback), `FileResponse` for W4.
uvicorn's defaults otherwise (uvloop + httptools when installed), except the access log: it is off
(`--no-access-log`), as izzati's is under `Backend.run()`, so that both sides do the same work per request.
"""

import argparse
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

CHUNK = 1024 * 1024


def echo_fields(form: Any) -> dict[str, str]:
    return {"name": form["name"], "n": form["n"]}


def count_bytes(form: Any) -> dict[str, int]:
    # the same work as every target's W2 callback: read the whole upload in 1 MiB chunks
    total = 0
    while chunk := form["file"].file.read(CHUNK):
        total += len(chunk)
    return {"size": total}


def make_lean_app(workload: str) -> FastAPI:
    app = FastAPI()
    callback = echo_fields if workload == "echo" else count_bytes

    @app.post("/")
    async def lean(request: Request) -> Any:
        async with request.form() as form:
            return await run_in_threadpool(callback, form)

    return app


def make_app(workload: str, path: str | None) -> FastAPI:
    app = FastAPI()
    if workload == "echo":

        @app.post("/")
        def echo(name: Annotated[str, Form()], n: Annotated[str, Form()]) -> dict[str, str]:
            return {"name": name, "n": n}

    elif workload == "size":

        @app.post("/")
        def size(file: Annotated[UploadFile, File()]) -> dict[str, int]:
            # the same work as every target's W2 callback: read the whole upload in 1 MiB chunks
            total = 0
            while chunk := file.file.read(CHUNK):
                total += len(chunk)
            return {"size": total}

    else:
        assert path is not None

        @app.post("/")
        def send_file() -> FileResponse:
            return FileResponse(path)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workload", choices=["echo", "size", "file"], required=True)
    parser.add_argument("--file")
    parser.add_argument("--lean", action="store_true", help="await request.form() and the callback in the thread pool")
    parser.add_argument("--access-log", action="store_true", help="uvicorn's access log (bench accesslog)")
    opts = parser.parse_args()
    app = make_lean_app(opts.workload) if opts.lean else make_app(opts.workload, opts.file)
    uvicorn.run(app, host="127.0.0.1", port=opts.port, workers=1, access_log=opts.access_log)


if __name__ == "__main__":
    main()
