"""The processes of a `Backend`: served in this process, or as supervised server processes (on
their devices, with their share of the cores) beside the service's other children."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from .. import defaults, multiplex, threads, tracing
from .._process import mp_context
from ..devices import CPU
from ..jobs.model import JobStatus
from ..jobs.service import JobService
from ..metrics import prepare_multiprocess
from ..queues import Queue
from ..supervisor import Child, Supervisor
from .app import IzzatiApp
from .endpoint import Endpoint
from .inputs import Limits
from .server import serve, server_children, server_config

__all__ = ["Serving", "SERVER", "WORKER"]

SERVER = "izzati-server"
WORKER = "izzati-worker"


class Serving:
    """How a `Backend` runs: `run`, `serve`, `server_children` and `supervise` (its app, routes,
    jobs and supervisor are the Backend's)."""

    app: IzzatiApp
    limits: Limits
    routes: dict[str, Endpoint]
    jobs: JobService | None
    supervisor: Supervisor
    metrics: bool
    traces: str
    background: bool
    q: Queue | None
    batches_only: bool

    @property
    def _jobs_here(self) -> JobService | None:
        """The jobs, when they run in this service's server processes (a `memory://` jobs queue)."""
        return self.jobs if self.jobs is not None and self.jobs.runs_here else None

    def _restarting(self, child: Child, pid: int) -> None:
        jobs = self._jobs_here
        if child.name.startswith(SERVER) and jobs is not None:
            # the jobs that process started have no queue entry any more: their next start counts an attempt
            jobs.requeue({JobStatus.RUNNING}, retrying=True, runner=pid)

    def two_batches(self, devices: Sequence[str]) -> bool:
        """Whether, under `cpu_threads="auto"`, each server process runs two batches at once on half
        its cores each (`izzati.threads.per_process`): when every callback takes batches and leaves
        that to izzati (`batches_only`), on the CPU, no job runs in these processes (their job
        runner takes one batch at a time), and no loader is multiplexed (a model per batch at once
        would load more than its `max_models`; read now, when the loaders are imported)."""
        on_cpu = all(device == CPU for device in devices)
        return self.batches_only and on_cpu and self._jobs_here is None and not multiplex.IN_USE

    def _before_children(self) -> None:
        # before any child starts: the processes' figures are summed, and the forked children
        # inherit the tracer provider (the SDK restarts its export thread in each)
        if self.metrics:
            prepare_multiprocess()
        tracing.configure(self.traces)

    def run(
        self,
        host: str = defaults.HOST,
        port: int = defaults.PORT,
        use_reloader: bool | None = None,
        *,
        workers: int = 1,
        log_level: str = "info",
        **uvicorn_options: Any,
    ) -> tuple[BaseProcess, Queue] | None:
        """Serve until stopped; with `background=True`, serve in a child process and return `(p, q)`.

        `workers` > 1 runs that many server processes (one by default, which suits a callback
        that keeps state in memory); `cpu_threads="auto"` (the default) gives each its share of
        the cores for its numeric libraries, a number sets it, 0 leaves their own defaults
        (`izzati.threads`).

        `use_reloader` is accepted for old scripts and ignored: izzati never reloads or runs the
        script twice. Other keyword arguments go to `uvicorn.Config`.
        """
        del use_reloader
        self._before_children()
        if self.background:
            assert self.q is not None
            process = mp_context().Process(
                target=self.serve,
                args=(host, port),
                kwargs={"workers": workers, "log_level": log_level, **uvicorn_options},
                daemon=True,
                name=f"izzati-web-{port}",
            )
            process.start()
            return process, self.q
        self.serve(host, port, workers=workers, log_level=log_level, **uvicorn_options)
        return None

    def serve(
        self, host: str = defaults.HOST, port: int = defaults.PORT, *, workers: int = 1, **uvicorn_options: Any
    ) -> None:
        """Run uvicorn until SIGINT/SIGTERM, in-flight requests finishing: in this process, or with
        `workers` > 1 (or jobs to run) as that many supervised server processes on one port."""
        if workers <= 1 and self._jobs_here is None:
            for endpoint in self.routes.values():
                endpoint.expect_processes(1)
            spec = uvicorn_options.pop("cpu_threads", threads.AUTO)
            threads.enter(threads.per_process(spec, 1, batches=self.two_batches((CPU,))))
            serve(server_config(self.app, host, port, self.limits, **uvicorn_options))
            return
        children, sock = self.server_children(host, port, per_device=workers, **uvicorn_options)
        self.supervise(children, sock, grace=uvicorn_options.get("timeout_graceful_shutdown"))

    def server_children(
        self,
        host: str,
        port: int,
        *,
        devices: Sequence[str] = (CPU,),
        per_device: int = 1,
        cpu_threads: str | int = threads.AUTO,
        **uvicorn_options: Any,
    ) -> tuple[list[Child], socket.socket]:
        """The server processes of this backend, `per_device` on each of `devices`, and the socket
        that holds the port meanwhile (`supervise` closes it); `cpu_threads`: the threads of their
        numeric libraries (`izzati.threads`). Other keyword arguments go to `uvicorn.Config`."""
        config = server_config(self.app, host, port, self.limits, **uvicorn_options)
        count = len(devices) * per_device
        for endpoint in self.routes.values():
            endpoint.expect_processes(count)
        share = threads.per_process(cpu_threads, count, batches=self.two_batches(devices))
        return server_children(config, devices, per_device, share)

    def supervise(
        self, children: Sequence[Child], sock: socket.socket | None = None, *, grace: float | None = None
    ) -> None:
        """Run these children (server processes and any others of the service) under this
        backend's supervisor until a signal or a failed setup stops the service, then exit with its
        code; `grace`: seconds they get to stop."""
        self._before_children()
        if (jobs := self._jobs_here) is not None:
            # any job not finished is one whose queue entry went with an earlier run (a job folder
            # kept in IZZATI_JOB_DIR): queued again before anything takes jobs
            jobs.requeue({JobStatus.QUEUED, JobStatus.RUNNING})
        self.supervisor.declare(*children)
        try:
            code = self.supervisor.run(grace)
        finally:
            if sock is not None:
                sock.close()
        if code:
            raise SystemExit(code)
