"""The spec's examples, exactly as written, as real scripts on the default port 5020."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.http import wait_for_http
from tests.support.processes import PYTHON, Proc

EXAMPLES = Path(__file__).resolve().parent / "spec_examples"
URL = "http://127.0.0.1:5020/"


def run_example(spawn: Callable[..., Proc], tmp_path: Path, name: str, env: dict[str, str] | None = None) -> Proc:
    script = tmp_path / name
    shutil.copy(EXAMPLES / name, script)
    proc = spawn([PYTHON, str(script)], cwd=tmp_path, env=env)
    wait_for_http(URL + "health", proc=proc.popen)
    return proc


def test_basic_example(spawn: Callable[..., Proc], tmp_path: Path) -> None:
    proc = run_example(spawn, tmp_path, "example_basic.py")
    (tmp_path / "up.txt").write_bytes(b"data")
    with open(tmp_path / "up.txt", "rb") as f:
        r = httpx.post(URL, data={"name": "ann"}, files={"file": f})
    assert r.json() == {"status": "yes"}
    assert r.headers["content-type"] == "application/json"
    proc.wait_output(lambda out: "{'name': 'ann'} ['up.txt']" in out)


def test_file_return_example(spawn: Callable[..., Proc], tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("the file\n")
    run_example(spawn, tmp_path, "example_file_return.py")
    r = httpx.post(URL, data={"a": "b"})
    assert r.content == b"the file\n"
    assert r.headers["content-type"].startswith("text/plain")
    assert 'filename="file.txt"' in r.headers["content-disposition"]


def test_background_server_example(spawn: Callable[..., Proc], tmp_path: Path) -> None:
    proc = run_example(spawn, tmp_path, "example_background_server.py")
    assert httpx.post(URL, data={"name": "bea"}).json() == {"status": "OK"}
    proc.wait_output(lambda out: "{'name': 'bea'} []" in out)


@pytest.mark.parametrize("name", ["example_background_process.py", "example_background_kwargs.py"])
def test_background_process_example(spawn: Callable[..., Proc], tmp_path: Path, name: str) -> None:
    proc = run_example(spawn, tmp_path, name)
    for who in ("cy", "di", "ed"):
        assert httpx.post(URL, data={"name": who}).json() == {"status": "OK"}
    out = proc.wait_output(lambda out: "Hello, ed" in out)
    assert out.index("Hello, cy") < out.index("Hello, di") < out.index("Hello, ed")


def test_prints_reach_a_pipe_as_they_happen(spawn: Callable[..., Proc], tmp_path: Path) -> None:
    # no PYTHONUNBUFFERED: stdout is a file, and the spec's prints have no flush=True
    proc = run_example(spawn, tmp_path, "example_background_process.py", env={"PYTHONUNBUFFERED": ""})
    assert httpx.post(URL, data={"name": "flo"}).json() == {"status": "OK"}
    out = proc.wait_output(lambda out: "Hello, flo" in out, timeout=10)
    assert "{'name': 'flo'} []" in out


def test_sigterm_lets_in_flight_request_finish(spawn: Callable[..., Proc], tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text(
        "import time\nfrom izzati import Backend\n"
        "def cb(text, data):\n    time.sleep(1.5)\n    return {'done': True}\n"
        "Backend(cb).run(host='127.0.0.1')\n"
    )
    proc = spawn([PYTHON, str(script)], cwd=tmp_path)
    wait_for_http(URL + "health", proc=proc.popen)
    with httpx.Client(timeout=10) as client:
        result: dict[str, httpx.Response] = {}
        thread = threading.Thread(target=lambda: result.setdefault("r", client.post(URL)))
        thread.start()
        time.sleep(0.5)  # the request is inside the 1.5 s callback now
        proc.signal(signal.SIGTERM)
        thread.join(10)
    assert result["r"].json() == {"done": True}
    # after the graceful shutdown the process exits through SystemExit(128 + SIGTERM), so
    # `finally` blocks and atexit (which stops daemon children) run
    assert proc.popen.wait(10) == 128 + signal.SIGTERM
    assert "Waiting for application shutdown" in proc.output()
