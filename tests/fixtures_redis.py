"""Pytest plugin: a real ``redis-server`` on a free loopback port, started and stopped per test.

Load it from ``conftest.py`` with ``pytest_plugins = ["tests.fixtures_redis"]``.

- ``redis_proc``: a :class:`~tests.support.redis_server.RedisServer` (``.url``, ``.port``, ``.stop()``,
  ``.start()``, ``.restart()``) with append-only persistence in a temporary directory, so a restart
  keeps data.
- ``redis_server``: just its URL, ``redis://127.0.0.1:PORT/0``.

Fixtures are torn down in reverse order of setup: a test that also starts processes talking to
Redis (``spawn``) should request ``redis_proc`` / ``redis_server`` first, so its processes stop
while Redis still runs (a worker whose Redis is gone waits for it while shutting down).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.support.redis_server import RedisServer

__all__ = ["redis_proc", "redis_server"]


@pytest.fixture
def redis_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A running ``redis-server`` (append-only persistence on) that the test can restart."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: apt-get install -y redis-server")
    directory = tmp_path_factory.mktemp("redis")
    for attempt in range(3):  # the free port can be taken between probing and binding
        server = RedisServer(binary, directory)
        try:
            server.start()
            break
        except RuntimeError:
            if attempt == 2:
                raise
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def redis_server(redis_proc: RedisServer) -> str:
    """The URL of a running ``redis-server``: ``redis://127.0.0.1:PORT/0``."""
    return redis_proc.url
