"""The access log: under `Backend.run()` every request gets its one line, written in batches by
izzati's handler; a handler of the user's own on `izzati.access` still gets every line through
`logging`."""

from __future__ import annotations

import io
import logging
import logging.config
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from izzati.web.accesslog import AccessHandler, access_log, write_access_line
from izzati.web.server import log_config
from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc


def test_every_request_of_a_busy_server_gets_exactly_one_line(spawn: Callable[..., Proc], tmp_path: Path) -> None:
    port = free_tcp_port()
    script = tmp_path / "serve.py"
    script.write_text(
        "from izzati import Backend\n"
        "def cb(text, data):\n    return text\n"
        f"Backend(cb).run(host='127.0.0.1', port={port})\n"
    )
    proc = spawn([PYTHON, str(script)], cwd=tmp_path)
    wait_for_http(f"http://127.0.0.1:{port}/health", proc=proc.popen)

    def call(i: int) -> int:
        headers = {"x-request-id": f"many-{i}"}
        return httpx.post(f"http://127.0.0.1:{port}/", data={"i": str(i)}, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(call, range(200))) == {200}
    out = proc.wait_output(lambda out: "request_id=many-" in out and out.count("request_id=many-") >= 200)
    lines = [line for line in out.splitlines() if "request_id=many-" in line]
    assert sorted(line.split("request_id=")[1].split()[0] for line in lines) == sorted(f"many-{i}" for i in range(200))
    assert all(line.startswith("INFO:     method=POST path=/ status=200 duration_ms=") for line in lines), lines[:3]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_server_stopped_at_once_has_written_every_line(
    spawn: Callable[..., Proc], tmp_path: Path, workers: int
) -> None:
    # lines wait in the buffer up to FLUSH_SECONDS; a stopping server process writes them first
    # (a forked one ends without atexit)
    port = free_tcp_port()
    script = tmp_path / "serve.py"
    script.write_text(
        "from izzati import Backend\n"
        "from izzati.web import accesslog\n"
        "accesslog.FLUSH_SECONDS = 60  # the lines are still in the buffer when the server stops\n"
        "def cb(text, data):\n    return text\n"
        f"Backend(cb).run(host='127.0.0.1', port={port}, workers={workers})\n"
    )
    proc = spawn([PYTHON, str(script)], cwd=tmp_path)
    wait_for_http(f"http://127.0.0.1:{port}/health", proc=proc.popen)
    with httpx.Client() as client:
        for i in range(20):
            assert client.post(f"http://127.0.0.1:{port}/", headers={"x-request-id": f"last-{i}"}).status_code == 200
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(30) in (0, 143)  # a graceful stop on SIGTERM
    logged = [line.split("request_id=")[1].split()[0] for line in proc.output().splitlines() if "=last-" in line]
    assert sorted(logged) == sorted(f"last-{i}" for i in range(20))


@pytest.fixture
def configured() -> Iterator[AccessHandler]:
    """The logging setup of `Backend.run()`, undone afterwards (every logger it touches)."""
    config = log_config("info")
    loggers = [logging.getLogger(name) for name in config["loggers"]]
    saved = [(logger, logger.handlers[:], logger.level, logger.propagate, logger.disabled) for logger in loggers]
    logging.config.dictConfig(config)
    (handler,) = access_log.handlers
    assert isinstance(handler, AccessHandler)
    try:
        yield handler
    finally:
        for logger, handlers, level, propagate, disabled in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled


def test_a_handler_of_your_own_gets_each_line_through_logging(configured: AccessHandler) -> None:
    records: list[logging.LogRecord] = []

    class Mine(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    access_log.addHandler(Mine())
    write_access_line("POST", "/", 200, 0.0012, "own-1", "10.0.0.1")
    assert [r.getMessage() for r in records] == [
        "method=POST path=/ status=200 duration_ms=1.2 request_id=own-1 client=10.0.0.1"
    ]


def test_lines_go_to_the_handlers_stream_unless_the_level_is_above_info(configured: AccessHandler) -> None:
    stream = io.StringIO()
    configured.setStream(stream)
    write_access_line("POST", "/", 200, 0.001, "loud-1", "-")
    access_log.setLevel(logging.WARNING)
    write_access_line("POST", "/", 200, 0.001, "quiet-1", "-")
    configured.write_pending()
    assert stream.getvalue() == "INFO:     method=POST path=/ status=200 duration_ms=1.0 request_id=loud-1 client=-\n"
