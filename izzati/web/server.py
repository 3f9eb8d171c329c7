"""Serving an ASGI app with uvicorn: in this process, or as supervised server processes on one port."""

from __future__ import annotations

import copy
import logging
import socket
from collections.abc import Sequence
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from .._process import bound_socket, exit_on_signals, line_buffered_output
from ..defaults import GRACEFUL_TIMEOUT
from ..supervisor import Child
from ..threads import Share
from .app import IzzatiApp
from .balance import BalancedServer, Loads
from .inputs import Limits
from .protocol import header_timeout_protocol

__all__ = ["serve", "server_config", "server_children", "log_config"]

logger = logging.getLogger("izzati")


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's logging setup plus izzati's loggers (access lines, callback errors) on stderr."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["izzati"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    # the access lines: uvicorn's format, written by a handler the middleware can hand lines to directly
    config["handlers"]["izzati-access"] = {
        "()": "izzati.web.accesslog.AccessHandler",
        "formatter": "default",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["izzati.access"] = {"handlers": ["izzati-access"], "level": level.upper(), "propagate": False}
    return config


def server_config(app: ASGIApp, host: str, port: int, limits: Limits, **uvicorn_options: Any) -> uvicorn.Config:
    """uvicorn's configuration for serving `app`; keyword arguments go to `uvicorn.Config`."""
    # izzati's middleware writes the access log (with the request id), so uvicorn's is off
    options: dict[str, Any] = {"log_level": "info", "timeout_graceful_shutdown": GRACEFUL_TIMEOUT, "access_log": False}
    # izzati serves no WebSocket: a handshake is an ordinary request, answered by the routes with
    # JSON (uvicorn's WebSocket layer refused it with an empty or plain-text 400 / 403 of its own)
    options["ws"] = "none"
    options.update(uvicorn_options)
    options.setdefault("log_config", log_config(str(options["log_level"])))
    if "http" not in options:
        protocol = header_timeout_protocol(limits.read_timeout, limits.max_header_bytes)
        if protocol is not None:
            options["http"] = protocol
    if isinstance(app, IzzatiApp):  # a job running in a stopping server gets the requests' grace
        app.job_grace = float(options["timeout_graceful_shutdown"])
    return uvicorn.Config(app, host=host, port=port, **options)


def serve(config: uvicorn.Config) -> None:
    """Run uvicorn in this process until SIGINT/SIGTERM, in-flight requests finishing."""
    line_buffered_output()  # callbacks print; their lines should reach logs as they happen
    with exit_on_signals():
        uvicorn.Server(config).run()


def _serve_shared_socket(config: uvicorn.Config, sock: socket.socket) -> None:
    line_buffered_output()
    uvicorn.Server(config).run(sockets=[sock])


def _serve_balanced(config: uvicorn.Config, sock: socket.socket, counts: Loads, index: int) -> None:
    line_buffered_output()
    BalancedServer(config, sock, counts, index).run()


def server_children(
    config: uvicorn.Config, devices: Sequence[str], per_device: int, share: Share | None = None
) -> tuple[list[Child], socket.socket]:
    """The server processes of one port: `per_device` on each device, restarted when they die,
    each with its `share` of the cores (`izzati.threads`; default: the libraries' own threads);
    and the socket that holds the port meanwhile (close it when they have stopped)."""
    share = share or Share(len(devices) * per_device)
    # one socket for them all, bound here (port 0 resolved once): each listens on it when it is ready
    tcp = config.uds is None and config.fd is None
    sock = bound_socket(config.host, config.port) if tcp else config.bind_socket()
    sock.set_inheritable(True)
    placed = [device for device in devices for _ in range(per_device)]
    if len(placed) == 1:
        children = [Child("izzati-server-0", _serve_shared_socket, (config, sock), device=placed[0], share=share)]
    else:  # their turns on the socket's connections (`izzati.web.balance`)
        counts = Loads.make(len(placed))
        children = [
            Child(
                f"izzati-server-{index}",
                _serve_balanced,
                (config, sock, counts, index),
                device=device,
                share=share,
                state=counts.states[index],  # the supervisor's marks are what the others read
            )
            for index, device in enumerate(placed)
        ]
    return children, sock
