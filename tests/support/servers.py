"""In-process uvicorn servers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn


class ThreadServer:
    """A uvicorn server for an ASGI app, in a thread of this process, on a free port.

    `make_server(config, sock)`: the server to run instead of `uvicorn.Server(config)` (one that
    takes its connections from the bound socket itself); keyword arguments go to `uvicorn.Config`.
    """

    def __init__(
        self,
        app: Any,
        make_server: Callable[[uvicorn.Config, socket.socket], uvicorn.Server] | None = None,
        **options: Any,
    ) -> None:
        # bound here and handed to uvicorn, so the port cannot be taken in between
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, **{"log_level": "warning", "lifespan": "on", **options})
        self.server = uvicorn.Server(config) if make_server is None else make_server(config, self.sock)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
