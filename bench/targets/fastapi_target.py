"""The baseline: a minimal hand-written FastAPI endpoint per workload, uvicorn with 1 worker.

    python bench/targets/fastapi_target.py --port P --workload echo|size|file [--file PATH]

Written the way a FastAPI user would: `Form()` / `UploadFile` parameters (as `Annotated[...]`), a plain `def`
endpoint (run in Starlette's thread pool, like izzati's plain callback), `FileResponse` for W4.
uvicorn's defaults otherwise (uvloop + httptools when installed), except the access log: it is off
(`--no-access-log`), as izzati's is under `Backend.run()`, so that both sides do the same work per request.
"""

import argparse
from typing import Annotated

import uvicorn
from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import FileResponse

CHUNK = 1024 * 1024


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
    parser.add_argument("--access-log", action="store_true", help="uvicorn's access log (bench accesslog)")
    opts = parser.parse_args()
    app = make_app(opts.workload, opts.file)
    uvicorn.run(app, host="127.0.0.1", port=opts.port, workers=1, access_log=opts.access_log)


if __name__ == "__main__":
    main()
