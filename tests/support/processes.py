"""Child processes with captured output, and the paths they run with."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CALLBACKS = ROOT / "tests" / "callbacks"
PYTHON = sys.executable


def stop_server(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Stop a server child: SIGTERM (it flushes what it keeps), SIGKILL if it takes longer."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


class Proc:
    """A child process with captured output, stopped (TERM, then KILL) at teardown."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        self.handle = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=self.handle, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace")

    def wait_output(self, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
        """Poll the output until `predicate(output)` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.output()
            if predicate(text):
                return text
            time.sleep(0.05)
        raise AssertionError(f"condition not met within {timeout} s; output:\n{self.output()}")

    def signal(self, sig: int) -> None:
        """Send a signal to the process."""
        self.popen.send_signal(sig)

    def kill_group(self) -> None:
        """SIGKILL the process and all its children."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(10)

    def stop(self) -> None:
        """Stop the process and its children: SIGTERM, then SIGKILL after 10 s."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.popen.poll() is None:
            self.popen.wait(10)
        self.handle.close()
