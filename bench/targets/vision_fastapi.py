"""P4's FastAPI target: the FastAPI server of LitServe's parity test
(`tests/parity_fastapi/fastapi-server.py`), rewritten here from reading it.

    python -m bench.targets.vision_fastapi --port P

As their test writes it: a pydantic body `{"image_data": str}`, an `async def` endpoint that
decodes the image and runs the model on it alone (on the event loop), one uvicorn process
whatever the others run with. On `/` (like every target), no access log, log level warning.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from bench.targets import peer_vision


class ImageData(BaseModel):
    image_data: str


def make_app() -> FastAPI:
    app = FastAPI()
    net = peer_vision.model()

    @app.post("/")
    async def predict(body: ImageData) -> dict[str, int]:
        try:
            (output,) = peer_vision.classify(net, [peer_vision.decode(body.image_data)])
            return {"output": output}
        except Exception as exc:
            raise HTTPException(status_code=500, detail=str(exc)) from exc

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    opts = parser.parse_args()
    uvicorn.run(make_app(), host="127.0.0.1", port=opts.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
