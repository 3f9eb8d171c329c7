"""Serving an ASGI app with uvicorn: one server process, or several on one port."""

from __future__ import annotations

import copy
import logging
import socket
import threading
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from .._process import bound_socket, exit_on_signals, line_buffered_output, mp_context, signals_handled, stop_processes
from ..defaults import GRACEFUL_TIMEOUT
from .inputs import Limits
from .protocol import header_timeout_protocol

__all__ = ["serve", "log_config"]

logger = logging.getLogger("izzati")


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's logging setup plus izzati's loggers (access lines, callback errors) on stderr."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["izzati"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def serve(app: ASGIApp, host: str, port: int, limits: Limits, *, workers: int = 1, **uvicorn_options: Any) -> None:
    """Run uvicorn until SIGINT/SIGTERM, in-flight requests finishing; `workers` > 1 forks that
    many server processes on one port. Other keyword arguments go to `uvicorn.Config`."""
    # izzati's middleware writes the access log (with the request id), so uvicorn's is off
    options: dict[str, Any] = {"log_level": "info", "timeout_graceful_shutdown": GRACEFUL_TIMEOUT, "access_log": False}
    options.update(uvicorn_options)
    options.setdefault("log_config", log_config(str(options["log_level"])))
    if "http" not in options:
        protocol = header_timeout_protocol(limits.read_timeout, limits.max_header_bytes)
        if protocol is not None:
            options["http"] = protocol
    config = uvicorn.Config(app, host=host, port=port, **options)
    line_buffered_output()  # callbacks print; their lines should reach logs as they happen
    if workers <= 1:
        with exit_on_signals():
            uvicorn.Server(config).run()
        return
    _serve_forked(config, workers)


def _serve_own_socket(config: uvicorn.Config, host: str, port: int) -> None:
    # each server process listens on its own SO_REUSEPORT socket: the kernel spreads new
    # connections evenly, where one shared socket lets whichever process wakes first take most
    sock = bound_socket(host, port, reuseport=True)
    sock.listen(config.backlog)
    uvicorn.Server(config).run(sockets=[sock])


def _serve_forked(config: uvicorn.Config, workers: int) -> None:
    """Fork `workers` servers on one port, and supervise them until a signal."""
    reuseport = hasattr(socket, "SO_REUSEPORT") and config.uds is None and config.fd is None
    if reuseport:
        # bound, never listening: holds the port (and resolves port 0) without taking connections
        sock = bound_socket(config.host, config.port, reuseport=True)
        port = sock.getsockname()[1]
    else:
        sock = config.bind_socket()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    context = mp_context()
    processes: list[BaseProcess] = []
    with signals_handled(on_signal):
        try:
            for index in range(workers):
                name = f"izzati-server-{index}"
                if reuseport:
                    process = context.Process(target=_serve_own_socket, args=(config, config.host, port), name=name)
                else:
                    server = uvicorn.Server(config)
                    process = context.Process(target=server.run, kwargs={"sockets": [sock]}, name=name)
                process.start()
                processes.append(process)
            logger.info("izzati serving with %d server processes", workers)
            while not stop.wait(0.5):
                dead = [process for process in processes if not process.is_alive()]
                if dead:
                    logger.error("server process %s exited with %s: stopping", dead[0].name, dead[0].exitcode)
                    break
        finally:
            stop_processes(processes, grace=float(config.timeout_graceful_shutdown or GRACEFUL_TIMEOUT) + 5)
            sock.close()
