"""The real Docker engine and compose, driven through their command lines (tests/test_compose*.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Any

import pytest

DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else (shutil.which("docker") or "docker")


def env() -> dict[str, str]:
    """This process's environment, set up for BuildKit builds by Debian's docker client."""
    variables = dict(os.environ)
    # Debian's docker client has BuildKit built in; a newer client earlier on PATH may lack buildx.
    variables["PATH"] = "/usr/bin:" + variables.get("PATH", "")
    variables["DOCKER_BUILDKIT"] = "1"
    variables["COMPOSE_DOCKER_CLI_BUILD"] = "1"
    return variables


def run(
    cmd: list[str],
    *,
    cwd: os.PathLike[str] | None = None,
    check: bool = True,
    timeout: float = 300,
    environment: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; with `check`, fail with the end of its output when it fails."""
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=environment or env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def logs(container: str) -> str:
    """A container's output so far."""
    proc = run([DOCKER, "logs", container], check=False)
    return proc.stdout + proc.stderr


def require_engine() -> str:
    """The engine's version and storage driver; fails the test when no engine answers."""
    info = run([DOCKER, "info", "--format", "{{.ServerVersion}} {{.Driver}}"], check=False)
    if info.returncode != 0:
        pytest.fail(
            "Docker is not usable here (`docker info` failed): run scripts/docker-setup first "
            f"(or deselect with -m 'not docker').\n{info.stderr.strip()}"
        )
    return info.stdout.strip()


def compose_command() -> list[str]:
    """`docker-compose` (1.29) when installed, else `docker compose` (v2)."""
    if shutil.which("docker-compose", path=env()["PATH"]):
        return ["docker-compose"]
    if run([DOCKER, "compose", "version"], check=False).returncode == 0:
        return [DOCKER, "compose"]
    pytest.fail("neither docker-compose nor `docker compose` is available: run scripts/docker-setup")


def image_size_mb(tag: str) -> float:
    """The image's size as `docker images` counts it (all its layers), in MB."""
    return round(int(run([DOCKER, "image", "inspect", "-f", "{{.Size}}", tag]).stdout.strip()) / 1e6, 1)


def wait(what: str, predicate: Any, timeout: float, interval: float = 0.25) -> Any:
    """Poll `predicate` until it returns something true; fail naming `what` and its last answer."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # keep polling; report the last error
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
