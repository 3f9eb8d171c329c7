"""Serve an example of examples/ with its documented command, `izzati run MODULE:CALLBACK`."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import ROOT, Proc

EXAMPLES = ROOT / "examples"


def izzati_command() -> str:
    """The installed `izzati` console script (from `pip install -e .`)."""
    beside = Path(sys.executable).with_name("izzati")
    found = str(beside) if beside.exists() else shutil.which("izzati")
    if found is None:
        pytest.fail("the `izzati` console script is not installed: pip install -e .", pytrace=False)
    return found


def serve(
    spawn: Callable[..., Proc], example: str, callback: str, *, ready_within: float = 120, **env: str
) -> tuple[Proc, str]:
    """`izzati run CALLBACK` in examples/EXAMPLE on a free port; the URL once /ready (setup done)."""
    port = free_tcp_port()
    proc = spawn(
        [izzati_command(), "run", callback, "--host", "127.0.0.1", "--port", str(port)],
        env={"PYTHONPATH": str(ROOT), **env},
        cwd=EXAMPLES / example,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/ready", timeout=ready_within, proc=proc.popen)
    return proc, url
