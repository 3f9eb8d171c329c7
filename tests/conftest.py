"""Fixtures: real uvicorn servers on free loopback ports, child processes, temp dirs, Redis.

Only fixtures live here; the helpers they use are in tests/support/, the Redis fixtures in
tests/fixtures_redis.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.http import wait_for_http
from tests.support.processes import CALLBACKS, ROOT, Proc
from tests.support.replay import load_profile
from tests.support.servers import ThreadServer

load_profile()

pytest_plugins = ["tests.fixtures_redis", "tests.fixtures_s3"]


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Factory: `serve(app)` runs the app under a real uvicorn and returns its base URL.

    uvicorn starts before the callback's `setup()` has run (it runs in the background, probes say
    "setting up"): `serve(app, set_up=True)` returns once `/ready` answers 200, for a test that
    reads what setup makes before its first request.
    """
    servers: list[ThreadServer] = []

    def start(app: Any, *, set_up: bool = False, **options: Any) -> str:
        server = ThreadServer(app, **options).start()
        servers.append(server)
        if set_up:
            wait_for_http(server.url + "/ready")
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def client_for(serve: Callable[..., str]) -> Iterator[Callable[..., httpx.Client]]:
    """Factory: `client_for(app)` serves the app and returns an httpx client bound to it."""
    clients: list[httpx.Client] = []

    def make(app: Any, **options: Any) -> httpx.Client:
        client = httpx.Client(base_url=serve(app, **options), timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Factory: `spawn([args], env={...})` starts a real child process with a clean env.

    Request it after `redis_proc` / `redis_server` in a test that uses both, so the processes are
    stopped before Redis is (fixtures are torn down in reverse order of setup).
    """
    procs: list[Proc] = []

    def start(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Proc:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("IZZATI_")}
        full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(CALLBACKS)])
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env or {})
        log = tmp_path / f"proc-{len(procs)}.log"
        proc = Proc(args, full_env, cwd or tmp_path, log)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()
