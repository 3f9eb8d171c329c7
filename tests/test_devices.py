"""Devices: IZZATI_DEVICES × IZZATI_WORKERS_PER_DEVICE server processes, each told its device
(real `python -m app` processes; a stand-in `nvidia-smi` on PATH lists two GPUs)."""

from __future__ import annotations

import os
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from izzati import devices
from tests.support.http import one_reply_from_each, wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, ROOT, Proc

Spawn = Callable[..., Proc]

TWO_GPUS = """#!/bin/sh
[ "$1" = "-L" ] || exit 2
echo "GPU 0: Stand-in GPU (UUID: GPU-00000000-0000-0000-0000-000000000000)"
echo "GPU 1: Stand-in GPU (UUID: GPU-11111111-1111-1111-1111-111111111111)"
"""


@pytest.fixture
def gpu_path(tmp_path: Path) -> str:
    """A PATH whose `nvidia-smi -L` lists two GPUs (and nothing else of it is there)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "nvidia-smi"
    script.write_text(TWO_GPUS)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


def test_auto_finds_the_gpus_nvidia_smi_lists(gpu_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", gpu_path)
    assert devices.parse("auto") == ["cuda:0", "cuda:1"]


def test_auto_without_a_gpu_is_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi here
    assert devices.parse("auto") == ["cpu"]
    failing = tmp_path / "nvidia-smi"  # nvidia-smi present, but no driver: it fails
    failing.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    failing.chmod(0o755)
    assert devices.parse("auto") == ["cpu"]


def test_device_lists_are_checked() -> None:
    assert devices.parse("cpu") == ["cpu"]
    assert devices.parse(" cuda:1, cuda:0 ") == ["cuda:1", "cuda:0"]
    for wrong, says in [
        ("gpu0", "'gpu0' is not a device"),
        ("cuda:0,cuda:0", "names a device twice"),
        (",", "no device"),
    ]:
        with pytest.raises(ValueError, match=says):
            devices.parse(wrong)


def _pids(proc: Proc) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{proc.popen.pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


def test_two_gpus_times_two_workers_each_process_on_its_gpu_across_a_restart(
    spawn: Spawn, gpu_path: str, tmp_path: Path
) -> None:
    port = free_tcp_port()
    env = {
        "PATH": gpu_path,
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_CALLBACK": "devicemodel:Model",
        "IZZATI_DEVICES": "auto",
        "IZZATI_WORKERS_PER_DEVICE": "2",
        "IZZATI_JOBS": "false",
        "DEVICE_LOG": str(tmp_path / "devices.log"),
    }
    proc = spawn([PYTHON, "-m", "app"], env=env)
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "health", proc=proc.popen)
    seen = one_reply_from_each(url, 4)
    assert set(seen) <= _pids(proc)  # children of the one supervisor
    by_gpu = sorted((r["assigned"], r["cuda_visible_devices"], r["device"]) for r in seen.values())
    # each GPU process sees its own GPU alone, as cuda:0 (the device string setup got)
    assert by_gpu == [("cuda:0", "0", "cuda:0")] * 2 + [("cuda:1", "1", "cuda:0")] * 2
    victim = next(pid for pid, r in seen.items() if r["assigned"] == "cuda:1")
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while len(lines := (tmp_path / "devices.log").read_text().splitlines()) < 5:
        assert time.monotonic() < deadline, lines
        time.sleep(0.1)
    pid, device, assigned, visible = lines[4].split()
    assert int(pid) != victim and (device, assigned, visible) == ("cuda:0", "cuda:1", "1")  # the same GPU
    again = one_reply_from_each(url, 4)
    assert victim not in again and sorted(str(r["assigned"]) for r in again.values()) == ["cuda:0"] * 2 + ["cuda:1"] * 2
    output = proc.output()
    assert "izzati-server-0 on cuda:0, izzati-server-1 on cuda:0, izzati-server-2 on cuda:1, izzati-server-3" in output
    assert f"started again (pid {pid}) on cuda:1" in output


def test_cpu_processes_get_cpu_and_keep_the_environment(spawn: Spawn, tmp_path: Path) -> None:
    port = free_tcp_port()
    env = {
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_CALLBACK": "devicemodel:Model",
        "IZZATI_JOBS": "false",
        "CUDA_VISIBLE_DEVICES": "7",
    }
    proc = spawn([PYTHON, "-m", "app"], env=env)  # IZZATI_DEVICES=cpu, the default
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "health", proc=proc.popen)
    [reply] = one_reply_from_each(url, 1).values()
    assert (reply["device"], reply["assigned"], reply["cuda_visible_devices"]) == ("cpu", "cpu", "7")


def _gpus() -> list[str]:
    found = devices.detect()
    return [] if found == [devices.CPU] else found


@pytest.mark.skipif(not _gpus(), reason="needs a machine with NVIDIA GPUs (nvidia-smi -L lists none here)")
def test_the_torch_script_serves_on_every_gpu(spawn: Spawn) -> None:
    pytest.importorskip("torch")
    port = free_tcp_port()
    env = {"IZZATI_HOST": "127.0.0.1", "IZZATI_PORT": str(port)}
    proc = spawn([str(ROOT / "scripts" / "serve-on-every-gpu")], env=env)
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "ready", proc=proc.popen, timeout=120)
    seen: dict[str, dict[str, object]] = {}
    deadline = time.monotonic() + 60
    while len(seen) < len(_gpus()):
        assert time.monotonic() < deadline, seen
        reply = httpx.post(url, data={"values": "[1, 2, 3, 4]"}).json()
        seen[str(reply["cuda_visible_devices"])] = reply
    assert sorted(seen) == sorted(gpu.split(":")[1] for gpu in _gpus())
    assert {reply["device"] for reply in seen.values()} == {"cuda:0"}
    assert len({str(reply["output"]) for reply in seen.values()}) == 1  # the same model on each GPU


def test_one_route_on_the_gpus_another_on_the_cpu(spawn: Spawn, gpu_path: str, tmp_path: Path) -> None:
    """`@izzati.on_device("cpu")` on a route's callback: its setup gets `cpu` in every process, a
    GPU process's too, while the other route's gets the process's GPU."""
    port = free_tcp_port()
    env = {
        "PATH": gpu_path,
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_ROUTES": "/gpu=devicemodel:Model,/cpu=devicemodel:CpuModel",
        "IZZATI_DEVICES": "auto",
        "IZZATI_WORKERS_PER_DEVICE": "1",
        "IZZATI_JOBS": "false",
    }
    proc = spawn([PYTHON, "-m", "app"], env=env)
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "ready", proc=proc.popen)
    on_gpu = one_reply_from_each(url + "gpu", 2)
    assert sorted((r["assigned"], r["device"]) for r in on_gpu.values()) == [("cuda:0", "cuda:0"), ("cuda:1", "cuda:0")]
    on_cpu = one_reply_from_each(url + "cpu", 2)
    assert sorted((r["assigned"], r["device"]) for r in on_cpu.values()) == [("cuda:0", "cpu"), ("cuda:1", "cpu")]
    assert set(on_cpu) == set(on_gpu)  # the same two GPU processes serve both routes


def test_a_route_goes_on_the_cpu_only() -> None:
    with pytest.raises(ValueError, match="a route can be put on 'cpu'"):
        devices.on_device("cuda:1")
