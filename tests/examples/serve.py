"""Serve an example of examples/ with its documented command, `izzati run MODULE:CALLBACK`, and
read how it batched."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
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


@contextlib.contextmanager
def served(example: str, callback: str, logs: Path, **env: str) -> Iterator[str]:
    """`izzati run CALLBACK` in examples/EXAMPLE on a free port: its URL once /ready (setup done)."""
    port = free_tcp_port()
    variables = {k: v for k, v in os.environ.items() if not k.startswith("IZZATI_")}
    variables.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", **env)
    command = [izzati_command(), "run", callback, "--host", "127.0.0.1", "--port", str(port)]
    proc = Proc(command, variables, EXAMPLES / example, logs / f"{example}-{port}.log")
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(url + "/ready", timeout=180, proc=proc.popen)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- output of {' '.join(command)}:\n{proc.output()[-3000:]}") from None
        yield url
    finally:
        proc.stop()


def batch_sizes(url: str) -> tuple[float, float]:
    """(batches, requests in them) from the server's izzati_batch_size histogram."""
    text = httpx.get(url + "/metrics").text
    found = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    return found.get("izzati_batch_size_count", 0.0), found.get("izzati_batch_size_sum", 0.0)
