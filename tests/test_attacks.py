"""Hostile input: fuzzed bodies, schema-driven fuzzing, load under attack, aborted uploads.

The server must answer every client mistake with a 4xx JSON error, never a 5xx, and keep serving.
"""

from __future__ import annotations

import json
import os
import random
import socket
import string
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from izzati import Backend, Limits, UploadedFile
from tests.support.servers import ThreadServer

CONTENT_TYPES = [
    "",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=latin-1",
    "application/x-www-form-urlencoded; charset=no-such-charset",
    "multipart/form-data; boundary=xyz",
    "multipart/form-data",
    'multipart/form-data; boundary=""',
    "multipart/form-data; boundary=" + "b" * 200,
    "application/json",
    "application/json; charset=utf-16",
    "text/plain",
    "application/octet-stream",
    "garbage",
    "multipart/mixed; boundary=xyz",
    ";;;",
]


def strict_echo(text: dict[str, Any], data: list[UploadedFile]) -> dict[str, Any]:
    """Touches everything it got, so a bad parse shows up as an error here."""
    json.dumps(text)
    return {"fields": len(text), "files": [(f.filename, len(f.read())) for f in data]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    upload_dir = tmp_path_factory.mktemp("uploads")
    limits = Limits(max_body_bytes=4 * 1024 * 1024, spool_bytes=1024, upload_dir=str(upload_dir), read_timeout=5)
    server = ThreadServer(Backend(strict_echo, limits=limits, access_log=False).app).start()
    server.upload_dir = upload_dir  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def assert_client_error_or_ok(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    if response.status_code >= 400:
        assert set(body) >= {"error", "detail"}


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str) -> bytes:
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


part = st.tuples(
    st.text(string.ascii_letters + "_-[]ü", min_size=1, max_size=20),
    st.one_of(st.none(), st.text(max_size=40).filter(lambda s: '"' not in s and "\r" not in s and "\n" not in s)),
    st.binary(max_size=2000),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content_type=st.sampled_from(CONTENT_TYPES), body=st.binary(max_size=4000))
def test_random_bodies_never_5xx(client: httpx.Client, content_type: str, body: bytes) -> None:
    headers = {"content-type": content_type} if content_type else {}
    assert_client_error_or_ok(client.post("/", content=body, headers=headers))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(part, max_size=12), cut=st.integers(min_value=0, max_value=100), flip=st.integers(0, 5000))
def test_broken_multipart_never_5xx(
    client: httpx.Client, parts: list[tuple[str, str | None, bytes]], cut: int, flip: int
) -> None:
    body = multipart(parts, "bnd")
    assert_client_error_or_ok(
        client.post("/", content=body, headers={"content-type": "multipart/form-data; boundary=bnd"})
    )
    broken = bytearray(body[: max(0, len(body) - cut)])
    if broken:
        broken[flip % len(broken)] ^= 0xFF
    assert_client_error_or_ok(
        client.post("/", content=bytes(broken), headers={"content-type": "multipart/form-data; boundary=bnd"})
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.floats() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=30,
    )
)
def test_json_of_any_shape_never_5xx(client: httpx.Client, value: Any) -> None:
    body = json.dumps(value).encode()  # floats may give NaN/Infinity: not JSON, must still be 4xx
    assert_client_error_or_ok(client.post("/", content=body, headers={"content-type": "application/json"}))


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/json", b"[" * 200_000 + b"]" * 200_000, 400),
        ("application/json", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 400),
        ("application/x-www-form-urlencoded", b"%ff%fe=%c3%28", 400),
        ("application/x-www-form-urlencoded", b"k" * 3_000_000 + b"=v", 200),
        ("multipart/form-data; boundary=b", multipart([("json", None, b"\xff\xfe")], "b"), 400),
        ("multipart/form-data; boundary=b", multipart([("x" * 100_000, None, b"v")], "b"), 413),
        ("multipart/form-data; boundary=b", multipart([("f", None, b"v")] * 5000, "b"), 413),
        ("multipart/form-data; boundary=b", multipart([("file", "a", b"v")] * 5000, "b"), 413),
        # empty nameless file parts (a browser's empty file input) are no files, but they are parts
        ("multipart/form-data; boundary=b", multipart([("file", "", b"")] * 5000, "b"), 413),
        (
            "multipart/form-data; boundary=b",
            multipart([("f", "x", b"1")], "b").replace(b"Content-Disposition", b"X"),
            400,
        ),
        ("application/json", json.dumps({"a": "x"}).encode().replace(b"x", b"\xed\xa0\x80"), 400),
    ],
    ids=[
        "nested-arrays",
        "nested-objects",
        "invalid-utf8-form",
        "huge-field-name-form",
        "invalid-utf8-multipart",
        "huge-part-header",
        "thousands-of-fields",
        "thousands-of-files",
        "thousands-of-empty-nameless-files",
        "no-disposition",
        "surrogate-in-json",
    ],
)
def test_named_attacks(client: httpx.Client, content_type: str, body: bytes, status: int) -> None:
    response = client.post("/", content=body, headers={"content-type": content_type})
    assert response.status_code == status, response.text[:300]
    assert_client_error_or_ok(response)


def abort_upload(url: str, size: int) -> None:
    """Start a multipart upload of `size` bytes, send half of it, and hang up."""
    host, port = url.removeprefix("http://").split(":")
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            + f"Content-Length: {size + len(head) + 10}\r\n\r\n".encode()
            + head
            + os.urandom(size // 2)
        )


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_no_leftover_files_after_1000_requests_with_aborts_and_failures(tmp_path: Path) -> None:
    upload_dir = tmp_path / "uploads"
    upload_dir.mkdir()

    def callback(text: dict[str, Any], data: list[UploadedFile]) -> dict[str, int]:
        if text.get("fail"):
            raise RuntimeError("callback failure")
        return {"files": len(data)}

    limits = Limits(spool_bytes=1024, upload_dir=str(upload_dir), max_body_bytes=1024 * 1024)
    server = ThreadServer(Backend(callback, limits=limits, access_log=False).app).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            client.post("/", files={"file": ("warm", b"x" * 4096)})
            baseline = open_fds()
            statuses: dict[int, int] = {}
            rng = random.Random(1)
            for i in range(1000):
                kind = i % 5
                if kind == 0:
                    abort_upload(server.url, rng.randint(2000, 200_000))
                    continue
                files = [("file", (f"f{j}.bin", os.urandom(rng.randint(10, 5000)))) for j in range(rng.randint(1, 3))]
                data = {"fail": "1"} if kind == 1 else {"n": str(i)}
                if kind == 2:
                    response = client.post("/", files=files + [("file", ("huge", b"x" * (2 * 1024 * 1024)))])
                else:
                    response = client.post("/", data=data, files=files)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert statuses == {500: 200, 413: 200, 200: 400}, statuses
            # aborted uploads end when the server sees the disconnect: wait for their files to close
            deadline = time.monotonic() + 10
            while open_fds() > baseline + 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert open_fds() <= baseline + 2
            assert list(upload_dir.iterdir()) == []
    finally:
        server.stop()


def test_normal_load_succeeds_while_attacked(server: ThreadServer) -> None:
    errors: list[str] = []
    stop = threading.Event()

    def attacker() -> None:
        rng = random.Random(7)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                body = rng.randbytes(rng.randint(0, 5000))
                content_type = rng.choice(CONTENT_TYPES)
                response = client.post(
                    "/", content=body, headers={"content-type": content_type} if content_type else {}
                )
                if response.status_code >= 500:
                    errors.append(response.text)

    attackers = [threading.Thread(target=attacker) for _ in range(2)]
    for thread in attackers:
        thread.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client, ThreadPoolExecutor(4) as pool:

            def normal(i: int) -> bool:
                response = client.post("/", data={"i": str(i)}, files={"file": (f"{i}.txt", b"x" * (i % 50))})
                return response.status_code == 200 and response.json() == {"fields": 1, "files": [[f"{i}.txt", i % 50]]}

            results = list(pool.map(normal, range(1000)))
    finally:
        stop.set()
        for thread in attackers:
            thread.join(30)
    assert all(results), results.count(False)
    assert errors == []


def _schema_app() -> Any:
    return Backend(strict_echo, limits=Limits(max_body_bytes=1024 * 1024), access_log=False).app


schema = schemathesis.openapi.from_asgi("/openapi.json", _schema_app())


@schema.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_no_server_errors(case: Any) -> None:
    response = case.call()
    assert response.status_code < 500, response.text
    if response.headers.get("content-type", [""])[0] == "application/json" and response.status_code >= 400:
        assert {"error", "detail"} <= set(json.loads(response.text))
