"""The GPU variant of the compose stack (docker-compose.gpu.yml), validated offline.

`docker-compose config` merges it onto docker-compose.yml and checks the result against compose's
own schema; no engine, no GPU, no NVIDIA runtime is involved (this machine has none): what runs
on a GPU host is documented in docs/real-model.md ("On a GPU") and was not run here.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.support import docker

ROOT = Path(__file__).resolve().parent.parent


def merged(tmp_path: Path, *files: str, env: str = "") -> dict[str, Any]:
    """The compose project `docker-compose config` makes of these files (with .env.example as .env)."""
    for name in ("docker-compose.yml", "docker-compose.gpu.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text() + env)
    args = [arg for name in files for arg in ("-f", name)]
    out = docker.run(docker.compose_command() + [*args, "config"], cwd=tmp_path, timeout=60).stdout
    config: dict[str, Any] = yaml.safe_load(out)
    return config


def test_web_and_worker_reserve_the_nvidia_gpus_and_name_their_devices(tmp_path: Path) -> None:
    config = merged(tmp_path, "docker-compose.yml", "docker-compose.gpu.yml")
    services = config["services"]
    for name in ("web", "worker"):
        [device] = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and "gpu" in device["capabilities"], device
        assert device.get("count") == "all" or device.get("device_ids"), device
        assert services[name]["environment"]["IZZATI_DEVICES"] == "auto"
        # the same image as without GPUs: the one built from the user's code and requirements
        assert services[name]["image"] == services["web"]["image"]
        assert services[name]["build"] == services["web"]["build"]
    assert "deploy" not in services["redis"]


def test_without_the_gpu_file_nothing_asks_for_a_gpu(tmp_path: Path) -> None:
    services = merged(tmp_path, "docker-compose.yml")["services"]
    assert all("deploy" not in s for s in services.values())
    assert all("IZZATI_DEVICES" not in s.get("environment", {}) for s in services.values())


def test_one_build_for_web_and_worker_with_the_chosen_code(tmp_path: Path) -> None:
    env = "\nIZZATI_CALLBACKS=examples/iris\nIZZATI_IMAGE=iris:1\n"
    services = merged(tmp_path, "docker-compose.yml", env=env)["services"]
    for name in ("web", "worker"):
        assert services[name]["image"] == "iris:1"
        assert services[name]["build"]["args"] == {"CALLBACKS": "examples/iris"}
        assert (str(tmp_path / "examples/iris"), "/callbacks", True) in map(_mount, services[name]["volumes"])


def _mount(volume: str | dict[str, Any]) -> tuple[str, str, bool]:
    """(source, target, read-only) of a volume as compose 1.29 (a string) or v2 (a mapping) prints it."""
    if isinstance(volume, dict):
        return volume["source"], volume["target"], bool(volume.get("read_only"))
    source, target, *mode = volume.split(":")
    return source, target, mode == ["ro"]
