"""The `izzati` console script, run for real in child processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from izzati import __version__
from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import ROOT, Proc

Spawn = Callable[..., Proc]

MYCODE = """
import time
from pathlib import Path

from izzati import file_return

print("imported mycode", flush=True)
VERSION = 1


def handle(text, data):
    if "boom" in text:
        raise RuntimeError("boom")
    if "sleep" in text:
        time.sleep(float(text["sleep"]))
    if text.get("want") == "file":
        return file_return(str(Path(__file__).with_name("report.csv")), filename="report.csv")
    if text.get("want") == "dotfile":
        return file_return(str(Path(__file__).with_name("report.csv")), filename=".env")
    files = [{"name": f.filename, "content": f.read().decode()} for f in data]
    return {"version": VERSION, "text": text, "files": files}


def queued(text, data, q):
    q.put(text)
    return {"queued": True}


def process(q):
    while True:
        item = q.get()
        print("processed", item, flush=True)
        q.task_done()
"""


def console_script() -> str:
    """The installed `izzati` command (from `pip install -e .`)."""
    beside = Path(sys.executable).with_name("izzati")
    found = str(beside) if beside.exists() else shutil.which("izzati")
    if found is None:
        pytest.fail("the `izzati` console script is not installed: pip install -e .", pytrace=False)
    return found


IZZATI = console_script()


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without IZZATI_* variables, izzati importable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IZZATI_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def izzati(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `izzati ARGS` to completion (environment: this one without IZZATI_*, plus `env`)."""
    return subprocess.run(
        [IZZATI, *args], cwd=cwd, env=clean_env(**(env or {})), capture_output=True, text=True, timeout=30
    )


def izzati_bytes(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Run `izzati ARGS` to completion, output as bytes."""
    return subprocess.run([IZZATI, *args], cwd=cwd, env=clean_env(), capture_output=True, timeout=30)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single `izzati: ...` line a failed command printed on stderr."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("izzati: "), lines[0]
    return lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project directory: `mycode.py` and a file to return, not on PYTHONPATH."""
    directory = tmp_path / "myproject"
    directory.mkdir()
    (directory / "mycode.py").write_text(MYCODE)
    (directory / "report.csv").write_text("id,score\n1,0.5\n")
    return directory


def serve(spawn: Spawn, project: Path, *args: str, port: int | None = None, **env: str) -> tuple[Proc, str]:
    """Start `izzati run ARGS` in the project on 127.0.0.1 and wait until it answers."""
    port = port or free_tcp_port()
    proc = spawn(
        [IZZATI, "run", *args, "--host", "127.0.0.1", "--port", str(port)],
        env={"PYTHONPATH": str(ROOT), **env},
        cwd=project,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/health", proc=proc.popen)
    return proc, url + "/"


# ------------------------------------------------------------------------------- version, help, usage


def test_version(tmp_path: Path) -> None:
    result = izzati("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"izzati {__version__}\n")


def test_help(tmp_path: Path) -> None:
    top = izzati("--help", cwd=tmp_path)
    assert top.returncode == 0
    for word in ("run", "send", "worker", "izzati run mycode:handle", "Exit codes"):
        assert word in top.stdout
    run = izzati("run", "--help", cwd=tmp_path)
    assert run.returncode == 0
    for word in ("--reload", "--workers", "--worker", "--queue", "IZZATI_PORT"):
        assert word in run.stdout
    send = izzati("send", "--help", cwd=tmp_path)
    assert send.returncode == 0
    for word in ("key=value", "--file", "--output", "--timeout", "--header"):
        assert word in send.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "required: COMMAND"),
        (("serve",), "invalid choice: 'serve'"),
        (("run", "--port", "http"), "invalid int value: 'http'"),
        (("run", "--prt", "1"), "unrecognized arguments: --prt"),
        (("send",), "required: url"),
        (("send", "http://127.0.0.1:9/", "name"), "'name': a text field is key=value"),
        (("send", "http://127.0.0.1:9/", "-f", "missing.jpg"), "-f missing.jpg: no such file"),
        (("send", "http://127.0.0.1:9/", "-H", "Authorization"), "expected 'Name: value'"),
        (("send", "127.0.0.1:9"), "must start with http:// or https://"),
        (("send", "http://127.0.0.1:9/", "--timeout", "0"), "--timeout 0.0: must be more than 0"),
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = izzati(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in one_error_line(result)
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("spec", "env", "message"),
    [
        ("nope:handle", {}, "IZZATI_CALLBACK='nope:handle': module 'nope' not found"),
        ("mycode:missing", {}, "IZZATI_CALLBACK='mycode:missing': module 'mycode' has no attribute 'missing'"),
        ("mycode", {}, "IZZATI_CALLBACK='mycode': expected 'module:function'"),
        ("mycode:VERSION", {}, "'VERSION' is a int, not callable"),
        ("mycode:handle", {"IZZATI_WORKERS": "zero"}, "IZZATI_WORKERS"),
        ("mycode:handle", {"IZZATI_QUEUE_URL": "ftp://x"}, "ftp://x"),
    ],
)
def test_bad_callback_or_setting_is_one_line_exit_2(
    project: Path, spec: str, env: dict[str, str], message: str
) -> None:
    result = izzati("run", spec, "--host", "127.0.0.1", "--port", str(free_tcp_port()), cwd=project, env=env)
    assert result.returncode == 2
    assert message in one_error_line(result)


def test_worker_needs_a_networked_queue(project: Path) -> None:
    result = izzati("worker", "mycode:process", cwd=project)
    assert result.returncode == 2
    assert "a separate worker needs a networked queue" in one_error_line(result)


# -------------------------------------------------------------------------------------- run + send


def test_run_takes_several_routes_and_send_takes_a_routes_url(spawn: Spawn, project: Path) -> None:
    proc, url = serve(spawn, project, "/=izzati.examples:echo", "/mine=mycode:handle", IZZATI_JOBS="false")
    assert httpx.post(url, data={"a": "1"}).json() == {"text": {"a": "1"}, "files": []}
    result = izzati("send", url + "mine", "name=bo", cwd=project)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"] == {"name": "bo"}


def test_run_imports_from_the_current_directory_and_send_round_trips(spawn: Spawn, project: Path) -> None:
    proc, url = serve(spawn, project, "mycode:handle")
    (project / "a.txt").write_text("alpha")
    (project / "b.txt").write_text("beta")
    result = izzati(
        "send", url, "name=alice", "tag=x", "tag=y", "eq=a=b", "-f", "a.txt", "--file", "b.txt", cwd=project
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("{\n  ")  # pretty-printed
    assert json.loads(result.stdout) == {
        "version": 1,
        "text": {"name": "alice", "tag": ["x", "y"], "eq": "a=b"},
        "files": [{"name": "a.txt", "content": "alpha"}, {"name": "b.txt", "content": "beta"}],
    }
    assert result.stderr == ""
    # the callback module ran once: no reloader, no second import by a worker
    assert proc.output().count("imported mycode") == 1


def test_send_writes_a_file_reply(spawn: Spawn, project: Path, tmp_path: Path) -> None:
    _, url = serve(spawn, project, "mycode:handle")
    out = tmp_path / "out" / "got.csv"
    out.parent.mkdir()
    result = izzati("send", url, "want=file", "-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_text() == "id,score\n1,0.5\n"
    assert result.stdout == ""
    assert "saved 15 bytes" in one_error_line(result)
    # -o overwrites: the user named the file
    out.write_text("old")
    assert izzati("send", url, "want=file", "-o", str(out), cwd=tmp_path).returncode == 0
    assert out.read_text() == "id,score\n1,0.5\n"
    # -o - writes the bytes to stdout
    raw = izzati_bytes("send", url, "want=file", "-o", "-", cwd=tmp_path)
    assert (raw.returncode, raw.stdout) == (0, b"id,score\n1,0.5\n")


def test_send_never_writes_a_dotfile_or_through_a_link(spawn: Spawn, project: Path, tmp_path: Path) -> None:
    _, url = serve(spawn, project, "mycode:handle")
    here = tmp_path / "dl"
    here.mkdir()
    result = izzati("send", url, "want=dotfile", cwd=here)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in here.iterdir()) == ["env"]  # not ".env", which izzati run would read
    (here / "env").unlink()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (here / "env").symlink_to(victim)
    refused = izzati("send", url, "want=dotfile", cwd=here)
    assert refused.returncode == 2
    assert victim.read_text() == "keep"


def test_send_without_output_saves_under_the_servers_name_never_overwriting(
    spawn: Spawn, project: Path, tmp_path: Path
) -> None:
    _, url = serve(spawn, project, "mycode:handle")
    here = tmp_path / "downloads"
    here.mkdir()
    first = izzati("send", url, "want=file", cwd=here)
    assert first.returncode == 0, first.stderr
    assert (here / "report.csv").read_text() == "id,score\n1,0.5\n"
    (here / "report.csv").write_text("mine")
    second = izzati("send", url, "want=file", cwd=here)
    assert second.returncode == 2
    assert "'report.csv' already exists and was not overwritten" in one_error_line(second)
    assert (here / "report.csv").read_text() == "mine"


def test_send_http_error_prints_json_and_exits_1(spawn: Spawn, project: Path, tmp_path: Path) -> None:
    _, url = serve(spawn, project, "mycode:handle")
    result = izzati("send", url, "boom=1", cwd=tmp_path)
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"] == "callback_failed"
    assert one_error_line(result) == "izzati: HTTP 500 Internal Server Error"
    missing = izzati("send", url + "nowhere", cwd=tmp_path)
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["error"] == "not_found"


def test_send_header_carries_the_api_key(spawn: Spawn, project: Path, tmp_path: Path) -> None:
    _, url = serve(spawn, project, "mycode:handle", IZZATI_API_KEY="s3cret")
    refused = izzati("send", url, "a=1", cwd=tmp_path)
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"] == "unauthorized"
    assert "HTTP 401" in one_error_line(refused)
    accepted = izzati("send", url, "a=1", "-H", "Authorization: Bearer s3cret", cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["text"] == {"a": "1"}


def test_send_connection_errors_exit_3(spawn: Spawn, project: Path, tmp_path: Path) -> None:
    port = free_tcp_port()
    refused = izzati("send", f"http://127.0.0.1:{port}/", "a=1", cwd=tmp_path)
    assert refused.returncode == 3
    assert "cannot connect" in one_error_line(refused)
    _, url = serve(spawn, project, "mycode:handle")
    slow = izzati("send", url, "sleep=2", "--timeout", "0.3", cwd=tmp_path)
    assert slow.returncode == 3
    assert "no reply within 0.3 s" in one_error_line(slow)


def test_options_override_environment_and_dotenv(spawn: Spawn, project: Path) -> None:
    env_port, dotenv_port = free_tcp_port(), free_tcp_port()
    (project / ".env").write_text(f"IZZATI_CALLBACK=mycode:handle\nIZZATI_HOST=127.0.0.1\nIZZATI_PORT={dotenv_port}\n")
    from_dotenv = spawn([IZZATI, "run"], cwd=project, env={"PYTHONPATH": str(ROOT)})
    wait_for_http(f"http://127.0.0.1:{dotenv_port}/health", proc=from_dotenv.popen)
    reply = httpx.post(f"http://127.0.0.1:{dotenv_port}/", data={"via": "dotenv"}).json()
    assert reply["text"] == {"via": "dotenv"}
    # an IZZATI_ variable beats .env, and an option beats both
    _, url = serve(spawn, project, port=free_tcp_port(), IZZATI_PORT=str(env_port))
    assert httpx.post(url, data={"via": "option"}).json()["version"] == 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{env_port}/health")


@pytest.mark.redis
def test_run_and_worker_on_redis(redis_server: str, spawn: Spawn, project: Path) -> None:
    _, url = serve(spawn, project, "mycode:queued", "--queue", redis_server)
    worker = spawn(
        [IZZATI, "worker", "mycode:process", "--queue", redis_server], cwd=project, env={"PYTHONPATH": str(ROOT)}
    )
    assert httpx.post(url, data={"a": "1"}).json() == {"queued": True}
    worker.wait_output(lambda out: "processed {'a': '1'}" in out)


# ------------------------------------------------------------------------------------------ reload


def test_reload_restarts_after_an_edit(spawn: Spawn, project: Path) -> None:
    proc, url = serve(spawn, project, "mycode:handle", "--reload")
    assert httpx.post(url, data={"n": "1"}).json()["version"] == 1
    (project / "mycode.py").write_text(MYCODE.replace("VERSION = 1", "VERSION = 2"))
    proc.wait_output(lambda out: "mycode.py changed, restarting" in out)
    deadline = time.monotonic() + 30
    version = 1
    while version != 2 and time.monotonic() < deadline:
        try:
            version = httpx.post(url, data={"n": "2"}, timeout=2).json()["version"]
        except httpx.TransportError:
            time.sleep(0.1)  # the new server is starting
    assert version == 2
    assert proc.output().count("imported mycode") == 2  # the watcher itself never imports it
    # SIGTERM (as from docker stop or a supervisor) stops the watcher, the server and its workers
    port = url.rsplit(":", 1)[1].strip("/")
    assert len(processes_with(f"--port {port}")) >= 3  # watcher, server, the server's worker
    proc.signal(signal.SIGTERM)
    assert proc.popen.wait(30) == 0
    assert processes_with(f"--port {port}") == []


def processes_with(text: str) -> list[int]:
    """The pids of live (not zombie) processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found
