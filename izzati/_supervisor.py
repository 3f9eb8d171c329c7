"""Several uvicorn server processes on one socket, started and stopped together."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn

from ._utils import mp_context

__all__ = ["serve_forked", "stop_processes"]

logger = logging.getLogger("izzati")


def stop_processes(processes: list[BaseProcess], grace: float) -> None:
    """Stop processes: SIGTERM and wait `grace` seconds, then SIGKILL; log each step."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(grace)
    for process in processes:
        if process.is_alive():
            logger.warning("process %s did not stop within %.0f s: killing it", process.name, grace)
            process.kill()
            process.join()


def _reuseport_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _serve_own_socket(config: uvicorn.Config, host: str, port: int) -> None:
    # each server process listens on its own SO_REUSEPORT socket: the kernel spreads new
    # connections evenly, where one shared socket lets whichever process wakes first take most
    sock = _reuseport_socket(host, port)
    sock.listen(config.backlog)
    uvicorn.Server(config).run(sockets=[sock])


def serve_forked(config: uvicorn.Config, workers: int) -> None:
    """Fork `workers` servers on one port, and supervise them until a signal."""
    reuseport = hasattr(socket, "SO_REUSEPORT") and config.uds is None and config.fd is None
    if reuseport:
        # bound, never listening: holds the port (and resolves port 0) without taking connections
        sock = _reuseport_socket(config.host, config.port)
        port = sock.getsockname()[1]
    else:
        sock = config.bind_socket()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    context = mp_context()
    processes: list[BaseProcess] = []
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
        stop_processes(processes, grace=float(config.timeout_graceful_shutdown or 30) + 5)
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
