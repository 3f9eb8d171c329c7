"""Serve an example of examples/ with its documented command, `izzati run MODULE:CALLBACK`, and
read how it batched."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

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


def batch_sizes(url: str) -> tuple[float, float]:
    """(batches, requests in them) from the server's izzati_batch_size histogram."""
    text = httpx.get(url + "/metrics").text
    found = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    return found.get("izzati_batch_size_count", 0.0), found.get("izzati_batch_size_sum", 0.0)
