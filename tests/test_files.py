"""The uploaded-file object and `file_return`."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from izzati import Backend, Limits, UploadedFile, file_return
from izzati.files import safe_filename
from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc


def make_upload(
    content: bytes, filename: str = "a.txt", content_type: str = "text/plain; charset=utf-8"
) -> UploadedFile:
    stream = tempfile.SpooledTemporaryFile(max_size=10)
    stream.write(content)
    stream.seek(0)
    return UploadedFile(stream, filename, content_type=content_type)


def test_filestorage_surface() -> None:
    upload = make_upload(b"hello world")
    assert upload.filename == "a.txt"
    assert upload.name == "file"
    assert upload.mimetype == "text/plain"
    assert upload.mimetype_params == {"charset": "utf-8"}
    assert upload.size == upload.content_length == 11
    assert upload.read(5) == b"hello"
    assert upload.tell() == 5
    assert upload.read() == b" world"
    upload.seek(0)
    assert upload.stream.read() == b"hello world"
    assert bool(upload)
    upload.close()
    assert upload.closed


def test_save_to_exact_path_and_to_open_file(tmp_path: Path) -> None:
    upload = make_upload(b"payload")
    upload.read()  # a callback that read first still saves everything
    target = tmp_path / "renamed.bin"
    assert upload.save(str(target)) == target
    assert target.read_bytes() == b"payload"
    buffer = io.BytesIO()
    assert upload.save(buffer) is None
    assert buffer.getvalue() == b"payload"


@pytest.mark.parametrize(
    "hostile",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "..\\..\\windows\\system32\\x.dll",
        "C:\\Users\\x\\evil.txt",
        "nul\x00byte.txt",
        "..",
        ".",
        "",
        "....//....//x",
        ".hidden",
        "ü" * 300 + ".txt",
        "a" * 1000,
        "line\nbreak\r.txt",
    ],
)
def test_save_into_directory_never_escapes(tmp_path: Path, hostile: str) -> None:
    outer = tmp_path / "outer"
    inner = outer / "inner"
    inner.mkdir(parents=True)
    upload = make_upload(b"x", filename=hostile)
    written = upload.save(inner)
    assert written is not None
    assert written.parent == inner.resolve()
    assert written.read_bytes() == b"x"
    assert len(written.name.encode()) <= 255
    assert "\x00" not in written.name and "/" not in written.name and "\\" not in written.name
    assert sorted(p.name for p in outer.iterdir()) == ["inner"]


def test_safe_filename_keeps_ordinary_names() -> None:
    assert safe_filename("photo 1.jpg") == "photo 1.jpg"
    assert safe_filename("résumé.pdf") == "résumé.pdf"
    assert safe_filename("dir/sub/report.csv") == "report.csv"
    long = safe_filename("b" * 400 + ".jpeg")
    assert long.endswith(".jpeg") and len(long.encode()) <= 255


def _bytes_on_disk(stream: Any) -> int | None:
    """The size of the file behind `stream`, or None when it is held in memory (no descriptor)."""
    try:
        fd = stream.fileno()
    except io.UnsupportedOperation:
        return None
    return os.fstat(fd).st_size


def test_large_upload_is_spooled_to_disk(client_for: Callable[..., httpx.Client]) -> None:
    seen: dict[str, Any] = {}

    def callback(text: dict[str, Any], data: list[UploadedFile]) -> dict[str, Any]:
        seen["on_disk"] = _bytes_on_disk(data[0].stream)
        return {"size": data[0].size, "sha": hashlib.sha256(data[0].read()).hexdigest()}

    client = client_for(Backend(callback).app)
    content = os.urandom(3 * 1024 * 1024)
    r = client.post("/", files={"file": ("big.bin", content)})
    assert r.json() == {"size": len(content), "sha": hashlib.sha256(content).hexdigest()}
    assert seen["on_disk"] == len(content)  # every byte is in the file, none left in a buffer


def test_uploads_stay_in_memory_up_to_spool_bytes(client_for: Callable[..., httpx.Client], tmp_path: Path) -> None:
    seen: list[int | None] = []

    def callback(text: dict[str, Any], data: list[UploadedFile]) -> list[str]:
        seen.extend(_bytes_on_disk(f.stream) for f in data)
        return [hashlib.sha256(f.read()).hexdigest() for f in data]

    limits = Limits(spool_bytes=1024, upload_dir=str(tmp_path))
    client = client_for(Backend(callback, limits=limits).app)
    contents = [os.urandom(1024), os.urandom(1025), os.urandom(100_000), b""]
    files = [("file", (f"f{i}", c)) for i, c in enumerate(contents)]
    r = client.post("/", files=files)
    assert r.json() == [hashlib.sha256(c).hexdigest() for c in contents]
    assert seen == [None, 1025, 100_000, None]
    assert list(tmp_path.iterdir()) == []  # the files on disk have no name: nothing to leak


def _kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} for {pid}")


def test_a_512_mib_upload_leaves_the_server_memory_flat(spawn: Callable[..., Proc]) -> None:
    # a real server process (python -m app) and a streamed body: RSS must not follow the upload size
    port = free_tcp_port()
    env = {"IZZATI_HOST": "127.0.0.1", "IZZATI_PORT": str(port), "IZZATI_JOBS": "false"}
    env |= {"IZZATI_CALLBACK": "echo_all:digest", "IZZATI_MAX_BODY_BYTES": str(2**30)}
    proc = spawn([PYTHON, "-m", "app"], env=env)
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "health", proc=proc.popen)
    block, blocks = os.urandom(1024 * 1024), 512
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
    tail = b"\r\n--b--\r\n"

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(blocks):
            yield block
        yield tail

    before = _kib(proc.popen.pid, "VmRSS")
    sha = hashlib.sha256()
    for _ in range(blocks):
        sha.update(block)
    length = len(head) + len(block) * blocks + len(tail)
    headers = {"content-type": "multipart/form-data; boundary=b", "content-length": str(length)}
    r = httpx.post(url, content=body(), headers=headers, timeout=120)
    assert r.json() == {"files": [{"size": len(block) * blocks, "sha256": sha.hexdigest()}]}
    growth_mib = (_kib(proc.popen.pid, "VmHWM") - before) / 1024
    assert growth_mib < 64, f"the server grew by {growth_mib:.1f} MiB for a 512 MiB upload"


def test_file_return_streams_bytes_with_type_and_name(client_for: Callable[..., httpx.Client], tmp_path: Path) -> None:
    report = tmp_path / "report.csv"
    report.write_bytes(b"a,b\n1,2\n" * 200_000)

    client = client_for(Backend(lambda text, data: file_return(str(report))).app)
    r = client.post("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="report.csv"'
    assert r.content == report.read_bytes()


def test_file_return_unicode_name_and_options(client_for: Callable[..., httpx.Client], tmp_path: Path) -> None:
    image = tmp_path / "tmp123"
    image.write_bytes(b"\x89PNG....")

    def callback(text: dict[str, Any], data: list[Any]) -> Any:
        return file_return(image, filename="größe.png", delete_after=True)

    client = client_for(Backend(callback).app)
    r = client.post("/")
    assert r.headers["content-type"] == "image/png"
    assert "filename*=utf-8''gr%C3%B6%C3%9Fe.png" in r.headers["content-disposition"]
    assert r.content == b"\x89PNG...."
    deadline = time.monotonic() + 5  # removed right after the last byte is sent
    while image.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not image.exists()


def test_file_return_missing_file_is_a_callback_error(client_for: Callable[..., httpx.Client], tmp_path: Path) -> None:
    client = client_for(Backend(lambda text, data: file_return(str(tmp_path / "nope.txt"))).app)
    r = client.post("/")
    assert r.status_code == 500
    assert r.json()["error"] == "callback_failed"
    assert "FileNotFoundError" in r.json()["detail"]
