"""`JobThread`: a service's jobs run in a thread of each process that serves them.

On memory:// the jobs queue reaches only this process tree, so the server processes run the jobs
themselves, with the callback they already set up: no process keeps a copy of the model of its
own. A job that kills its process (a crash, an OOM kill, `os._exit`) ends the whole server
process; the supervisor starts it again and gives back the jobs that process had started
(`JobService.requeue(runner=pid)`), so they run again under IZZATI_JOB_MAX_ATTEMPTS and
IZZATI_JOB_RETRIES as they did with a separate job runner.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Mapping

from .._process import critical_thread
from ..invoker import Invoker
from .runner import JobRunner
from .service import JobService

__all__ = ["JobThread"]

NAME = "izzati-jobs"


def _exit_for_restart(name: str) -> None:
    # stop as `docker stop` would (requests in flight finish); the supervisor starts a new process
    os.kill(os.getpid(), signal.SIGTERM)


class JobThread:
    """Runs `jobs` with `invoker` (each with its route's, given `routes`) in a thread of this
    process, once its setup is done."""

    def __init__(self, jobs: JobService, invoker: Invoker, routes: Mapping[str, Invoker] | None = None) -> None:
        self.runner: JobRunner = jobs.runner(invoker, routes)
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Start taking jobs (the callback is set up in this process by now)."""
        self.thread = critical_thread(self.runner.run, NAME, _exit_for_restart)

    def stop(self, grace: float) -> None:
        """Stop after the current job, waiting for it up to `grace` seconds (a job still running
        then is given back when this process is gone)."""
        self.runner.stop()
        if self.thread is not None:
            self.thread.join(grace)
