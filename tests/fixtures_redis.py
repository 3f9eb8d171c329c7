"""Pytest plugin: a real ``redis-server`` on a free loopback port, started and stopped per test.

Load it from ``conftest.py`` with ``pytest_plugins = ["tests.fixtures_redis"]``.

- ``redis_proc``: a :class:`~tests.support.redis_server.RedisServer` (``.url``, ``.port``, ``.stop()``,
  ``.start()``, ``.restart()``) with append-only persistence in a temporary directory, so a restart
  keeps data.
- ``redis_server``: just its URL, ``redis://127.0.0.1:PORT/0``.
- ``tls_redis``: a ``redis-server`` that speaks only TLS, with a self-signed CA (``.tls.ca``) and
  one ACL user, ``TLS_USER`` with ``TLS_PASSWORD`` (the default user is off).

Fixtures are torn down in reverse order of setup: a test that also starts processes talking to
Redis (``spawn``) should request ``redis_proc`` / ``redis_server`` first, so its processes stop
while Redis still runs (a worker whose Redis is gone waits for it while shutting down).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.redis_server import RedisServer
from tests.support.tls import make_certificates

__all__ = ["redis_proc", "redis_server", "tls_redis", "TLS_USER", "TLS_PASSWORD"]

TLS_USER = "izzati-app"
TLS_PASSWORD = "tls-s3cret-pw"


def _started(directory: Path, **options: Any) -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: apt-get install -y redis-server")
    for attempt in range(3):  # the free port can be taken between probing and binding
        server = RedisServer(binary, directory, **options)
        try:
            server.start()
            return server
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@pytest.fixture
def redis_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A running ``redis-server`` (append-only persistence on) that the test can restart."""
    directory = tmp_path_factory.mktemp("redis")
    server = _started(directory)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A running ``redis-server`` on TLS only, with one ACL user."""
    directory = tmp_path_factory.mktemp("redis-tls")
    users = ("default off", f"{TLS_USER} on >{TLS_PASSWORD} ~* &* +@all")
    server = _started(directory, tls=make_certificates(directory), users=users)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def redis_server(redis_proc: RedisServer) -> str:
    """The URL of a running ``redis-server``: ``redis://127.0.0.1:PORT/0``."""
    return redis_proc.url
