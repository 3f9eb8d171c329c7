"""What the benchmarks share: target servers on free 127.0.0.1 ports, wrk and its results, the
checks of replies before timing, the interleaved and settled timed runs (`load_test`), the
machine and versions a report names. The suite itself (`python -m bench`) is bench/suite.py.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import latency

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
ORIG = BENCH / ".orig"
ORIG_PY = ORIG / "venv" / "bin" / "python"
ORIG_REQUIREMENTS = ["izzati==1.2.3", "flask==3.1.3", "requests"]
RESULTS = BENCH / "results"
# the --against target: izzati from another git revision, beside the working tree's
BASE = "izzati@base"
LUA = BENCH / "lua" / "post.lua"
MiB = 1024 * 1024
JSON_TYPE = "application/json"
W1_BODY = b"name=alice&n=1"
W1_EXPECT = {"name": "alice", "n": "1"}
W2_FILE_BYTES = 100 * 1024
W4_FILE_BYTES = 10 * MiB

# what makes the comparisons fair, printed in every report (docs/performance.md says the same)
LIKE_FOR_LIKE = [
    "access logs: off in every target (izzati: `Backend(cb, access_log=False)`; FastAPI: uvicorn "
    "`access_log=False`, as `--no-access-log`; original: werkzeug's request log at ERROR)",
    "W2/W3 callback, every target: reads the whole upload in 1 MiB chunks and returns the byte count",
    "like for like: izzati vs FastAPI and vs the original (plain `def` callbacks on a thread pool, same work, "
    "no access log); izzati-async is informational (an `async def` callback, no thread hop)",
]

SERVER_CPU = "0"  # with pinning: every server on CPU 0, wrk and the upload client on CPU 1
LOAD_CPU = "1"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """`pid` and all its live descendants (for the forked workers of `run(workers=N)`)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                children = Path(f"/proc/{p}/task/{tid}/children").read_text().split()
                todo.extend(int(c) for c in children)
        except OSError:
            pass
    return found


def proc_status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_kib(pid: int, key: str) -> int:
    return sum(proc_status_kib(p, key) for p in descendants(pid))


def tree_cpu_seconds(pid: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in descendants(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError):
            pass
    return total / ticks


@dataclass
class Server:
    label: str
    argv: list[str]
    port: int
    env: dict[str, str]
    pin: bool
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    close: bool = False  # wrk sends `Connection: close`: a new connection for every request
    idle: float | None = None  # the cores it keeps busy with nothing to do (`load_test` measures it)

    def start(self, logdir: Path) -> None:
        self.log_path = logdir / f"{self.label.replace(' ', '_').replace('/', '_')}-{self.port}.log"
        argv = (["taskset", "-c", SERVER_CPU] if self.pin else []) + self.argv
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                argv, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.label} did not listen on {self.port} within {timeout} s: {self.log_tail()}")

    def log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[-1500:].decode("utf-8", "replace")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal_tree(self, signum: int) -> None:
        """Send `signum` to the server and every process under it."""
        for pid in descendants(self.pid):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # our own session: the server and its workers
            self.proc.wait(5)


@contextlib.contextmanager
def alone(server: Server | None, servers: list[Server]) -> Iterator[None]:
    """While `server` is timed, every other one of `servers` is stopped (SIGSTOP on its whole
    tree) and continued after (SIGCONT): an idle server that polls (LitServe's used 0.17 of a core
    here, idle) takes no CPU from the one being timed. `server` None: all of them are stopped."""
    others = [s for s in servers if s is not server and s.proc is not None and s.proc.poll() is None]
    for other in others:
        other.signal_tree(signal.SIGSTOP)
    try:
        yield
    finally:
        for other in others:
            other.signal_tree(signal.SIGCONT)


def cpu_rate(server: Server, seconds: float) -> float:
    """The cores `server`'s process tree keeps busy over the next `seconds`."""
    cpu0, t0 = tree_cpu_seconds(server.pid), time.perf_counter()
    time.sleep(seconds)
    return (tree_cpu_seconds(server.pid) - cpu0) / (time.perf_counter() - t0)


SETTLE_SAMPLE = 0.2
"""Seconds of each sample of `settle`: the kernel counts CPU time in ticks of 10 ms, so a sample of
200 ms reads a rate to 0.05 of a core."""


def settle(server: Server, timeout: float = 30.0) -> float:
    """Wait until `server` has done the work its last timed run left it, and return the seconds
    waited. wrk hangs up on the requests still in flight when its time is up, and a server may
    compute them all the same (LitServe's P4 server did 1.3-1.5 s of work on both cores after each
    run; izzati drops the calls whose client has gone, but finishes the batch it is running).
    Timed at once, the next run would pay for them. Settled: two samples in a row within a quarter
    of a core of `server.idle`, what it keeps busy when it has nothing to do (LitServe polls; measured
    here if it was not)."""
    if server.idle is None:
        server.idle = cpu_rate(server, 1.0)
    idle = server.idle
    t0 = time.perf_counter()
    calm = 0
    while calm < 2:
        if time.perf_counter() - t0 > timeout:
            log(f"  {server.label}: still busy {timeout:.0f} s after its last run; timed all the same")
            break
        calm = calm + 1 if cpu_rate(server, SETTLE_SAMPLE) <= idle + 0.25 else 0
    return time.perf_counter() - t0


def base_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTHONDEVMODE", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def ensure_original() -> bool:
    """Install the original izzati 1.2.3 with Flask into bench/.orig/venv (once)."""
    if ORIG_PY.exists():
        probe = subprocess.run([str(ORIG_PY), "-c", "import izzati, flask"], capture_output=True)
        if probe.returncode == 0:
            return True
    log("installing the original izzati 1.2.3 + Flask into bench/.orig/venv (once)")
    ORIG.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(ORIG / "venv")], check=True)
        subprocess.run(
            [str(ORIG_PY), "-m", "pip", "install", "-q", "--disable-pip-version-check", *ORIG_REQUIREMENTS],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        log(f"could not install the original izzati: {exc}; its rows are skipped")
        return False
    return True


def server_for(kind: str, workload: str, port: int, pin: bool, **extra: Any) -> Server:
    """kind: izzati | izzati-async | izzati@base (`extra["tree"]`: another checkout) | original | fastapi."""
    env = base_env()
    args = ["--port", str(port), "--workload", workload]
    if extra.get("file"):
        args += ["--file", str(extra["file"])]
    if kind == BASE:
        env["PYTHONPATH"] = str(extra["tree"])  # the same target script, on the other checkout's izzati
    if kind in ("izzati", "izzati-async", BASE):
        if extra.get("workers"):
            args += ["--workers", str(extra["workers"])]
        if extra.get("threads"):
            args += ["--threads", str(extra["threads"])]
        if extra.get("max_body_bytes"):
            args += ["--max-body-bytes", str(extra["max_body_bytes"])]
        if extra.get("routes"):
            args += ["--routes", str(extra["routes"])]
        if kind == "izzati-async":
            args.append("--async")
        if extra.get("stdlib_json"):
            args.append("--stdlib-json")
        argv = [sys.executable, str(BENCH / "targets" / "izzati_target.py"), *args]
    elif kind in ("fastapi", "fastapi-lean"):
        argv = [sys.executable, str(BENCH / "targets" / "fastapi_target.py"), *args]
        argv += ["--lean"] if kind == "fastapi-lean" else []
    elif kind == "original":
        env.pop("PYTHONPATH", None)  # the venv's izzati 1.2.3, never the repo's
        argv = [str(ORIG_PY), str(BENCH / "targets" / "original_target.py"), *args]
    else:
        raise ValueError(kind)
    label = extra.get("label") or kind
    return Server(label, argv, port, env, pin)


# ---------------------------------------------------------------------------------------------
# request bodies and checks


@dataclass
class Body:
    path: Path
    content_type: str
    data: bytes


def make_bodies(tmp: Path) -> dict[str, Any]:
    rng_file = bytes((i * 2654435761 >> 13) & 0xFF for i in range(W2_FILE_BYTES))
    boundary = "izzatibenchboundary7MA4YWxkTrZu0gW"
    multipart = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="blob.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + rng_file
        + f"\r\n--{boundary}--\r\n".encode()
    )
    form = Body(tmp / "w1.body", "application/x-www-form-urlencoded", W1_BODY)
    mp = Body(tmp / "w2.body", f"multipart/form-data; boundary={boundary}", multipart)
    for body in (form, mp):
        body.path.write_bytes(body.data)
    big = tmp / "w4-file.bin"
    with open(big, "wb") as out:
        block = os.urandom(MiB)
        for _ in range(W4_FILE_BYTES // MiB):
            out.write(block)
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    return {"form": form, "multipart": mp, "file": big, "file_sha256": digest}


def post(port: int, body: Body, timeout: float = 30.0) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/", body=body.data, headers={"Content-Type": body.content_type})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def json_reply(status: int, ctype: str, raw: bytes) -> tuple[str, Any]:
    """What is wrong with a reply that should be 200 JSON ('' when nothing is), and its value."""
    if status != 200:
        return f"status {status}: {raw[:200]!r}", None
    if ctype != JSON_TYPE:
        return f"Content-Type {ctype!r} is not exactly {JSON_TYPE!r}", None
    try:
        return "", json.loads(raw)
    except ValueError:
        return f"body is not JSON: {raw[:200]!r}", None


def check_json(port: int, body: Body, expect: Any) -> str:
    problem, value = json_reply(*post(port, body))
    if problem:
        return problem
    if value != expect:
        return f"body {value!r} != expected {expect!r}"
    return ""


def check_file(port: int, body: Body, digest: str) -> str:
    status, _, raw = post(port, body)
    if status != 200:
        return f"status {status}: {raw[:200]!r}"
    got = hashlib.sha256(raw).hexdigest()
    if got != digest:
        return f"file sha256 {got[:16]}… != {digest[:16]}… ({len(raw)} bytes)"
    return ""


# ---------------------------------------------------------------------------------------------
# wrk


@dataclass
class WrkRun:
    rps: float
    mb_s: float
    errors: int
    wrk_cpu: float  # fraction of one core used by wrk
    server_cpu: float  # cores used by the server process tree
    hist: list[list[float]]  # [[latency µs, count], ...]: percentiles over runs (bench/latency.py)


def run_wrk(server: Server, body: Body, duration: int, connections: int, pin: bool, path: str = "/") -> WrkRun:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(LUA)]
    argv.append(f"http://127.0.0.1:{server.port}{path}")
    if pin:
        argv = ["taskset", "-c", LOAD_CPU, *argv]
    env = {**os.environ, "BENCH_BODY": str(body.path), "BENCH_CTYPE": body.content_type}
    env["BENCH_CLOSE"] = "1" if server.close else ""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0, t0 = tree_cpu_seconds(server.pid), time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 60)
    wall = time.perf_counter() - t0
    cpu1 = tree_cpu_seconds(server.pid)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {done.stdout[-500:]} {done.stderr[-500:]}")
    data = json.loads(line.split(" ", 1)[1])
    seconds = data["duration_us"] / 1e6
    errors = sum(data[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeout_errors"))
    wrk_cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / wall
    return WrkRun(
        rps=data["requests"] / seconds,
        mb_s=data["bytes"] / seconds / MiB,
        errors=errors,
        wrk_cpu=wrk_cpu,
        server_cpu=(cpu1 - cpu0) / wall,
        hist=data["hist"],
    )


@dataclass
class Row:
    label: str
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    mb_s: float = 0.0
    rss_mib: float = 0.0
    errors: int = 0
    wrk_cpu: float = 0.0
    server_cpu: float = 0.0
    cpu_us: float = 0.0  # server CPU time per request: steadier than req/s when other work shares the cores
    runs: list[float] = field(default_factory=list)
    note: str = ""


def load_test(
    servers: list[Server],
    body: Body,
    check: Callable[[int], str],
    opts: argparse.Namespace,
    connections: int,
    pin: bool,
    path: str = "/",
    between: Callable[[], None] | None = None,
) -> list[Row]:
    """Check every server, note what it takes of the CPU idle, warm it up, then interleave --runs
    timed runs (POSTs to `path`), the others stopped meanwhile (`alone`), each run once the server
    has settled (`settle`); medians per server. `between`: run at the end of each round
    of runs, every server stopped meanwhile."""
    rows: dict[str, Row] = {}
    live: list[Server] = []
    for server in servers:
        problem = check(server.port)
        if problem:
            log(f"  {server.label}: response check FAILED: {problem}")
            rows[server.label] = Row(server.label, note=f"check failed: {problem}")
        else:
            log(f"  {server.label}: response checked")
            live.append(server)
    for server in live:
        with alone(server, live):
            server.idle = cpu_rate(server, 1.0)
            run_wrk(server, body, opts.warmup, connections, pin, path)
    samples: dict[str, list[WrkRun]] = {s.label: [] for s in live}
    for i in range(opts.runs):
        for server in live:
            with alone(server, live):
                settle(server)
                result = run_wrk(server, body, opts.duration, connections, pin, path)
            samples[server.label].append(result)
            log(f"  run {i + 1}/{opts.runs} {server.label}: {result.rps:,.0f} req/s (wrk CPU {result.wrk_cpu:.0%})")
        if between is not None:
            with alone(None, live):
                between()
    for server in live:
        xs = samples[server.label]
        med = statistics.median
        rows[server.label] = Row(
            server.label,
            rps=med(x.rps for x in xs),
            p50_ms=latency.percentile((x.hist for x in xs), 50) / 1000,  # of all the runs' requests
            p99_ms=latency.percentile((x.hist for x in xs), 99) / 1000,
            mb_s=med(x.mb_s for x in xs),
            rss_mib=tree_kib(server.pid, "VmHWM") / 1024,
            errors=sum(x.errors for x in xs),
            wrk_cpu=med(x.wrk_cpu for x in xs),
            server_cpu=med(x.server_cpu for x in xs),
            cpu_us=med(x.server_cpu / x.rps * 1e6 if x.rps else 0.0 for x in xs),
            runs=[round(x.rps, 1) for x in xs],
            note=f"{sum(x.errors for x in xs)} errors" if any(x.errors for x in xs) else "",
        )
    return [rows[s.label] for s in servers]


def with_servers(servers: list[Server], logdir: Path, fn: Callable[[], Any]) -> Any:
    try:
        for server in servers:
            server.start(logdir)
        for server in servers:
            server.wait_ready()
        return fn()
    finally:
        for server in servers:
            server.stop()


def versions() -> dict[str, str]:
    out: dict[str, str] = {}
    from importlib.metadata import PackageNotFoundError, version

    for name in ("uvicorn", "fastapi", "starlette", "uvloop", "httptools", "python-multipart", "redis"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    if ORIG_PY.exists():
        code = "from importlib.metadata import version as v; print(v('flask'), v('werkzeug'), v('izzati'))"
        done = subprocess.run([str(ORIG_PY), "-c", code], capture_output=True, text=True, cwd=ORIG)
        if done.returncode == 0:
            flask, werkzeug, izzati = done.stdout.split()
            out.update({"original izzati": izzati, "flask (original)": flask, "werkzeug (original)": werkzeug})
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    out["wrk"] = (wrk.stdout + wrk.stderr).split("Copyright")[0].replace("wrk", "").strip()
    return out


def machine() -> dict[str, str]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "izzati"], cwd=REPO, capture_output=True, text=True)
    changed = len(dirty.stdout.splitlines())
    return {
        "izzati commit": head.stdout.strip() + (f" + {changed} uncommitted file(s) in izzati/" if changed else ""),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load average at start (1/5/15 min)": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }
