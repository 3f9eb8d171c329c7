"""End-to-end: the real image and the real docker-compose.yml on a real Docker engine.

Builds the image from the repository's Dockerfile, runs the repository's docker-compose.yml
(copied with callbacks/ and a .env made from .env.example into a temporary project directory,
so a developer's own .env is never touched) under a unique project name, publishes the web port
on 127.0.0.1 on a free port, and asserts over HTTP and the docker CLI.

A compose override adds only what the assertions need to observe the worker: a bind-mounted
directory where callbacks/example.py's worker writes each item as a JSON line (CALLBACKS_OUT).

The same stack then gets the `monitoring` profile's Prometheus (a local stand-in image built from
Debian's package by scripts/docker-setup): it must scrape the web and every worker replica and
report what was sent. Grafana is not started: no image of it can exist on these machines.

Needs a working Docker engine (`scripts/docker-setup` makes one on a bare Debian machine;
`scripts/compose-test` runs setup and this module). Without one these tests FAIL, on purpose.
Deselect with `-m "not docker"` where Docker is not wanted.
"""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import docker
from tests.support.dashboards import load_dashboard, metric_names, promql, queries
from tests.support.net import free_tcp_port
from tests.support.prometheus import Prometheus

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parent.parent
TIMINGS: dict[str, float | str] = {}

OVERRIDE = """\
# test-only additions; the base file is the repository's docker-compose.yml, unchanged
services:
  worker:
    environment:
      CALLBACKS_OUT: /out
      CALLBACKS_DELAY: ${CALLBACKS_DELAY:-0}
    volumes:
      - ./out:/out
"""


def _http_ok_inside(container: str, port: int = 5020) -> bool:
    probe = f"import urllib.request as r; r.urlopen('http://127.0.0.1:{port}/health', timeout=2)"
    return docker.run([docker.DOCKER, "exec", container, "python", "-c", probe], check=False).returncode == 0


class Stack:
    """One compose project in a temporary directory."""

    def __init__(self, workdir: Path, image: str, port: int, prometheus_port: int) -> None:
        self.dir = workdir
        self.image = image
        self.port = port
        self.prometheus = Prometheus(f"http://127.0.0.1:{prometheus_port}")
        self.project = f"izzatie2e{uuid.uuid4().hex[:8]}"
        self.out = workdir / "out"
        self.base = f"http://127.0.0.1:{port}"
        self.compose = docker.compose_command() + [
            "-p",
            self.project,
            "-f",
            "docker-compose.yml",
            "-f",
            "docker-compose.e2e.yml",
        ]

    def __call__(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 180,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = docker.env()
        env.update(extra_env or {})
        return docker.run(self.compose + list(args), cwd=self.dir, check=check, timeout=timeout, environment=env)

    def container_ids(self, service: str) -> list[str]:
        return self("ps", "-q", service).stdout.split()

    def services_running(self) -> set[str]:
        """The services of this project that have a running container (whatever the profile)."""
        label = "com.docker.compose.project=" + self.project
        fmt = '{{.Label "com.docker.compose.service"}}'
        return set(docker.run([docker.DOCKER, "ps", "--filter", f"label={label}", "--format", fmt]).stdout.split())

    def health(self, service: str) -> str:
        ids = self.container_ids(service)
        if not ids:
            return "no container"
        return docker.run([docker.DOCKER, "inspect", "-f", "{{.State.Health.Status}}", ids[0]]).stdout.strip()

    def running(self, service: str) -> int:
        ids = self.container_ids(service)
        if not ids:
            return 0
        states = docker.run([docker.DOCKER, "inspect", "-f", "{{.State.Running}}", *ids]).stdout.split()
        return states.count("true")

    def workers_ready(self, n: int) -> bool:
        """n worker containers running, each having logged that its worker started."""
        ids = self.container_ids("worker")
        return len(ids) == n and self.running("worker") == n and all("started" in docker.logs(cid) for cid in ids)

    def pending(self) -> str:
        """Items taken by a worker and not yet acknowledged (XPENDING of the izzati stream)."""
        proc = self("exec", "-T", "redis", "redis-cli", "XPENDING", "izzati:stream", "izzati", check=False)
        return proc.stdout.split("\n", 1)[0].strip() if proc.returncode == 0 else "n/a"

    def processed(self) -> list[tuple[str, dict[str, Any]]]:
        """Every item the workers wrote: (worker hostname, item)."""
        items = []
        for path in sorted(self.out.glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    items.append((path.stem, json.loads(line)))
                except json.JSONDecodeError:  # a line being written right now
                    pass
        return items

    def ids_seen(self, prefix: str) -> Counter[str]:
        return Counter(
            str(item["text"]["id"])
            for _, item in self.processed()
            if isinstance(item.get("text"), dict) and str(item["text"].get("id", "")).startswith(prefix)
        )


def _post_ids(client: httpx.Client, ids: list[str]) -> None:
    def one(item_id: str) -> None:
        r = client.post("/", json={"id": item_id})
        assert r.status_code == 200, (item_id, r.status_code, r.text)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(one, ids))


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    TIMINGS["engine"] = docker.require_engine()
    tag = f"izzati:e2e-{uuid.uuid4().hex[:8]}"
    t0 = time.monotonic()
    docker.run([docker.DOCKER, "build", "--network", "host", "-t", tag, str(ROOT)], timeout=600)
    TIMINGS["build_s"] = round(time.monotonic() - t0, 1)
    TIMINGS["image_mb"] = docker.image_size_mb(tag)
    try:
        yield tag
    finally:
        docker.run([docker.DOCKER, "rmi", "-f", tag], check=False)
        print("\n[compose e2e] " + json.dumps(TIMINGS), flush=True)


@pytest.fixture(scope="module")
def stack(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("compose")
    shutil.copy(ROOT / "docker-compose.yml", work / "docker-compose.yml")
    shutil.copytree(ROOT / "callbacks", work / "callbacks", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "monitoring", work / "monitoring")
    (work / "docker-compose.e2e.yml").write_text(OVERRIDE)
    (work / "out").mkdir()
    (work / "out").chmod(0o777)  # the worker runs as a non-root uid
    port, prometheus_port = free_tcp_port(), free_tcp_port()
    example = ROOT / ".env.example"
    env_text = example.read_text() if example.exists() else "# .env.example missing\n"
    # What a user does (`cp .env.example .env`), plus this run's ports and image.
    (work / ".env").write_text(
        env_text + f"\nIZZATI_PORT={port}\nIZZATI_IMAGE={image}\nIZZATI_LOG_LEVEL=info\n"
        f"IZZATI_PROMETHEUS_PORT={prometheus_port}\n"
    )
    s = Stack(work, image, port, prometheus_port)
    t0 = time.monotonic()
    try:
        s("up", "-d", "--no-build")
        docker.wait("GET /health", lambda: httpx.get(s.base + "/health", timeout=2).status_code == 200, 90)
        TIMINGS["up_to_http_ok_s"] = round(time.monotonic() - t0, 1)
        yield s
    finally:
        if s.container_ids("web"):  # test_down did not run or failed: clean up and show logs
            logs = s("logs", "--no-color", "--tail", "60", check=False).stdout
            print(f"\n[compose e2e] last logs:\n{logs}", flush=True)
        s("--profile", "monitoring", "down", "-v", "--remove-orphans", "-t", "5", check=False)


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base, timeout=30) as c:
        yield c


def test_health_and_container_healthy(stack: Stack, client: httpx.Client) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    t0 = time.monotonic()
    docker.wait("web container health == healthy", lambda: stack.health("web") == "healthy", 90)
    TIMINGS["healthy_after_http_s"] = round(time.monotonic() - t0, 1)
    assert stack.health("redis") == "healthy"


def test_processes_run_as_non_root(stack: Stack) -> None:
    for service in ("web", "worker"):
        uid = stack("exec", "-T", service, "id", "-u").stdout.strip()
        assert uid.isdigit() and uid != "0", f"{service} runs as uid {uid!r}"
    ps = stack("exec", "-T", "web", "python", "-c", "import os; print(os.getuid(), os.getgid())").stdout.split()
    assert ps[0] != "0"


def test_multipart_upload_reaches_callback_and_worker(stack: Stack, client: httpx.Client) -> None:
    marker = f"upload-{uuid.uuid4().hex[:8]}"
    r = client.post(
        "/",
        data={"id": marker, "note": "hello"},
        files={"file": ("hello.txt", b"hello izzati\n", "text/plain")},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["files"] == ["hello.txt"], body  # the user callback in callbacks/example.py answered
    assert body["text"]["id"] == marker
    docker.wait(
        "the upload's item in a worker's output file",
        lambda: stack.ids_seen(marker)[marker] >= 1,
        30,
    )
    docker.wait(
        "the upload's item in `docker-compose logs worker`",
        lambda: marker in stack("logs", "--no-color", "worker").stdout,
        30,
    )
    item = next(i for _, i in stack.processed() if i.get("text", {}).get("id") == marker)
    assert item == {"text": {"id": marker, "note": "hello"}, "files": ["hello.txt"]}


def test_job_runs_in_a_worker_container(stack: Stack, client: httpx.Client) -> None:
    marker = f"job-{uuid.uuid4().hex[:8]}"
    r = client.post("/jobs", data={"id": marker}, files={"file": ("job.txt", b"job input\n", "text/plain")})
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    status = docker.wait(
        "the job done by a worker container",
        lambda: (s := client.get(f"/jobs/{job}").json())["status"] in ("done", "failed") and s,
        60,
    )
    assert status["status"] == "done", status
    result = client.get(f"/jobs/{job}/result")
    assert result.json() == {"queued": True, "text": {"id": marker}, "files": ["job.txt"]}


def test_two_workers_process_each_item_exactly_once(stack: Stack, client: httpx.Client) -> None:
    stack("up", "-d", "--no-build", "--scale", "worker=2")
    docker.wait("2 started workers", lambda: stack.workers_ready(2), 60)
    prefix = f"scale-{uuid.uuid4().hex[:6]}-"
    ids = [f"{prefix}{n:03d}" for n in range(200)]
    t0 = time.monotonic()
    _post_ids(client, ids)
    docker.wait("200 distinct items processed", lambda: len(stack.ids_seen(prefix)) == 200, 60)
    TIMINGS["200_items_s"] = round(time.monotonic() - t0, 2)
    time.sleep(2)  # give a duplicate the chance to show up
    seen = stack.ids_seen(prefix)
    assert set(seen) == set(ids)
    dupes = {k: v for k, v in seen.items() if v != 1}
    assert not dupes, f"items processed more than once: {dupes}"
    per_worker = Counter(w for w, i in stack.processed() if str(i["text"].get("id", "")).startswith(prefix))
    TIMINGS["200_items_per_worker"] = str(dict(per_worker))
    assert len(per_worker) == 2, f"both workers should take items: {dict(per_worker)}"


def test_killed_worker_loses_nothing(stack: Stack, client: httpx.Client) -> None:
    # Slow workers, so items are in flight (taken, not acknowledged) when they are killed.
    delay = {"CALLBACKS_DELAY": "0.1"}
    stack("up", "-d", "--no-build", "--scale", "worker=2", extra_env=delay)
    docker.wait("2 running workers", lambda: stack.running("worker") == 2, 60)
    prefix = f"kill-{uuid.uuid4().hex[:6]}-"
    first = [f"{prefix}a{n:02d}" for n in range(40)]
    second = [f"{prefix}b{n:02d}" for n in range(40)]
    _post_ids(client, first)
    docker.wait("some items processed", lambda: len(stack.ids_seen(prefix)) >= 4, 30, interval=0.05)
    stack("kill", "worker")
    done_at_kill = len(stack.ids_seen(prefix))
    TIMINGS["kill_in_flight_at_kill"] = stack.pending()
    assert stack.running("worker") == 0
    _post_ids(client, second)  # queued while no worker runs
    t0 = time.monotonic()
    stack("up", "-d", "--no-build", "--scale", "worker=2", extra_env=delay)
    docker.wait("all 80 items processed after the restart", lambda: len(stack.ids_seen(prefix)) == 80, 90)
    TIMINGS["after_kill_all_done_s"] = round(time.monotonic() - t0, 1)
    seen = stack.ids_seen(prefix)
    assert set(seen) == set(first + second)
    TIMINGS["kill_processed_before_kill"] = done_at_kill
    # At-least-once: an item a worker finished but had not acknowledged may run again.
    TIMINGS["kill_redelivered_twice"] = sum(1 for v in seen.values() if v > 1)


def test_redis_restart_recovers_on_its_own(stack: Stack, client: httpx.Client) -> None:
    stack("up", "-d", "--no-build", "--scale", "worker=2")  # back to full speed
    docker.wait("2 running workers", lambda: stack.running("worker") == 2, 60)
    t0 = time.monotonic()
    stack("restart", "redis")
    TIMINGS["redis_restart_cmd_s"] = round(time.monotonic() - t0, 1)
    prefix = f"redis-{uuid.uuid4().hex[:6]}-"
    ids: list[str] = []

    def post_ok() -> bool:
        item_id = f"{prefix}{len(ids):03d}"
        ids.append(item_id)
        return client.post("/", json={"id": item_id}, timeout=15).status_code == 200

    docker.wait("a POST that succeeds after `restart redis`", post_ok, 60, interval=0.5)
    TIMINGS["redis_restart_post_ok_s"] = round(time.monotonic() - t0, 1)
    more = [f"{prefix}x{n:02d}" for n in range(20)]
    _post_ids(client, more)
    docker.wait(
        "items flow to workers after `restart redis`",
        lambda: set(more) <= set(stack.ids_seen(prefix)),
        60,
    )
    TIMINGS["redis_restart_items_ok_s"] = round(time.monotonic() - t0, 1)
    assert client.get("/health").status_code == 200
    assert stack.running("web") == 1 and stack.running("worker") == 2
    docker.wait("web container healthy again", lambda: stack.health("web") == "healthy", 60)


def test_a_crashed_worker_is_restarted(stack: Stack, client: httpx.Client) -> None:
    # restart: unless-stopped, with init: true as PID 1: a worker process that dies (SIGKILL, as
    # the OOM killer sends) ends its container, and Docker starts it again
    stack("up", "-d", "--no-build", "--scale", "worker=1")
    docker.wait("1 ready worker", lambda: stack.workers_ready(1), 60)
    [cid] = stack.container_ids("worker")
    before = int(docker.run([docker.DOCKER, "inspect", "-f", "{{.RestartCount}}", cid]).stdout.strip())
    kill = (
        "import os\n"
        "for p in filter(str.isdigit, os.listdir('/proc')):\n"
        "    c = open(f'/proc/{p}/cmdline', 'rb').read().split(bytes(1))\n"
        "    if c[1:4] == [b'-m', b'app', b'worker']: os.kill(int(p), 9)\n"
    )
    # the container stops with its worker: this exec may be killed with it (137) before it returns
    assert docker.run([docker.DOCKER, "exec", cid, "python", "-c", kill], check=False).returncode in (0, 137)
    docker.wait(
        "the worker container restarted",
        lambda: (
            int(docker.run([docker.DOCKER, "inspect", "-f", "{{.RestartCount}}", cid]).stdout.strip()) > before
            and stack.running("worker") == 1
        ),
        60,
    )
    prefix = f"crash-{uuid.uuid4().hex[:6]}-"
    _post_ids(client, [f"{prefix}{n}" for n in range(5)])
    docker.wait("items processed by the restarted worker", lambda: len(stack.ids_seen(prefix)) == 5, 60)


def _sample(text: str, name: str, **labels: str) -> float | None:
    """One sample of a scrape in the Prometheus text format, or None."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def _worker_scrape(container: str) -> str:
    """A worker container's own GET /metrics (its port is not published: asked from inside)."""
    fetch = "import urllib.request as r; print(r.urlopen('http://127.0.0.1:9100/metrics', timeout=5).read().decode())"
    return docker.run([docker.DOCKER, "exec", container, "python", "-c", fetch]).stdout


def _address(container: str) -> str:
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    return docker.run([docker.DOCKER, "inspect", "-f", fmt, container]).stdout.strip()


def _taken(container: str) -> float | None:
    """Items a worker container says it took from the `izzati` queue."""
    return _sample(_worker_scrape(container), "izzati_queue_items_taken_total", queue="izzati")


def _start_prometheus(stack: Stack) -> None:
    t0 = time.monotonic()
    stack("--profile", "monitoring", "up", "-d", "--no-build", "--scale", "worker=2", "web", "worker", "prometheus")
    docker.wait("2 started workers", lambda: stack.workers_ready(2), 60)
    TIMINGS["prometheus_version"] = docker.wait("Prometheus's API", stack.prometheus.version, 60)
    docker.wait("the web scraped", lambda: stack.prometheus.healthy("izzati-web", 1), 60)
    docker.wait("both workers scraped", lambda: stack.prometheus.healthy("izzati-worker", 2), 60)
    TIMINGS["prometheus_up_to_targets_up_s"] = round(time.monotonic() - t0, 1)


def test_monitoring_profile_scrapes_the_web_and_every_worker(stack: Stack, client: httpx.Client) -> None:
    # `up` without the profile (every test so far) started neither Prometheus nor Grafana
    assert stack.services_running() == {"web", "worker", "redis"}
    _start_prometheus(stack)
    assert stack.services_running() == {"web", "worker", "redis", "prometheus"}
    prom = stack.prometheus
    workers = {_address(cid): cid for cid in stack.container_ids("worker")}
    assert {t["labels"]["instance"] for t in prom.targets("izzati-worker")} == {f"{a}:9100" for a in workers}
    [web_target] = prom.targets("izzati-web")
    assert web_target["labels"]["instance"] == f"web:{stack.port}"

    posted = 'izzati_requests_total{job="izzati-web",route="/",method="POST",status="200"}'
    labels = {"route": "/", "method": "POST", "status": "200"}
    web_before = _sample(client.get("/metrics").text, "izzati_requests_total", **labels) or 0
    taken_before = sum(_taken(c) or 0 for c in workers.values())
    prefix = f"prom-{uuid.uuid4().hex[:6]}-"
    _post_ids(client, [f"{prefix}{n:02d}" for n in range(30)])
    docker.wait("30 items processed", lambda: len(stack.ids_seen(prefix)) == 30, 60)
    web_after = _sample(client.get("/metrics").text, "izzati_requests_total", **labels)
    assert web_after == web_before + 30
    t0 = time.monotonic()
    docker.wait(f"Prometheus's {posted} == {web_after}", lambda: prom.value(posted) == web_after, 60)
    TIMINGS["prometheus_caught_up_s"] = round(time.monotonic() - t0, 1)

    taken = {address: _taken(c) for address, c in workers.items()}
    assert sum(v or 0 for v in taken.values()) == taken_before + 30  # each item taken once, by one worker
    for address, count in taken.items():  # every replica is scraped on its own
        series = f'izzati_queue_items_taken_total{{job="izzati-worker",instance="{address}:9100",queue="izzati"}}'
        docker.wait(f"Prometheus's {series} == {count}", lambda s=series, c=count: prom.value(s) == c, 60)
    total = 'sum(izzati_queue_items_taken_total{job="izzati-worker",queue="izzati"})'
    assert prom.value(total) == taken_before + 30

    # broker-level gauges: every target (web and the two workers) reports the same figure
    assert prom.value('count(izzati_queue_up{queue="izzati"})') == 3
    assert prom.value('min(izzati_queue_up{queue="izzati"})') == 1
    docker.wait("2 live workers", lambda: prom.value('max(izzati_workers_live{queue="izzati"})') == 2, 60)
    done = _sample(client.get("/metrics").text, "izzati_jobs", state="done")
    assert done is not None and done >= 1  # test_job_runs_in_a_worker_container's job
    assert prom.value('max(izzati_jobs{state="done"})') == done


def test_every_dashboard_query_runs_on_the_real_prometheus(stack: Stack) -> None:
    """Prometheus's parser and data for each panel: only the batch and multiplexing panels may be
    empty here, as the compose example callback neither batches nor loads models by id (their
    names and labels are checked against a real scrape in test_monitoring)."""
    prom = stack.prometheus
    may_be_empty = {"izzati_batch_size_bucket", "izzati_batch_size_sum", "izzati_batch_size_count"}
    may_be_empty |= {
        "izzati_models_resident",
        "izzati_model_loads_total",
        "izzati_model_load_failures_total",
        "izzati_model_evictions_total",
    }
    dashboard = queries(load_dashboard())
    pending = {where: promql(expr) for where, expr in dashboard if not metric_names(expr) & may_be_empty}
    assert len(pending) >= 15

    def all_answered() -> dict[str, str]:
        for where, expr in list(pending.items()):
            if prom.query(expr):
                del pending[where]
        return pending

    try:
        docker.wait("every query but the batch ones returns data", lambda: not all_answered(), 90, interval=3)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; no data from: {pending}") from None
    for _, expr in dashboard:
        prom.query(promql(expr))  # parses and runs


def test_prometheus_sends_the_api_key_from_env(stack: Stack, client: httpx.Client) -> None:
    env = stack.dir / ".env"
    plain = env.read_text()
    key = uuid.uuid4().hex
    env.write_text(plain + f"IZZATI_API_KEY={key}\n")
    prometheus_before = stack.container_ids("prometheus")
    try:
        stack("--profile", "monitoring", "up", "-d", "--no-build", "web", "prometheus")
        assert stack.container_ids("prometheus") != prometheus_before  # recreated with the key
        docker.wait("web /health", lambda: client.get("/health").status_code == 200, 60)
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        keyed = datetime.now(UTC)  # a scrape after this one reached the keyed web
        docker.wait("the keyed web scraped", lambda: stack.prometheus.healthy("izzati-web", 1, since=keyed), 60)
    finally:
        env.write_text(plain)
        stack("up", "-d", "--no-build", "web")
        stack("--profile", "monitoring", "rm", "-s", "-f", "-v", "prometheus", check=False)
    docker.wait("web /health without a key", lambda: client.get("/metrics").status_code == 200, 60)
    assert stack.services_running() == {"web", "worker", "redis"}


def test_down_is_fast(stack: Stack) -> None:
    t0 = time.monotonic()
    stack("down", "-v", "--remove-orphans")
    took = time.monotonic() - t0
    TIMINGS["down_s"] = round(took, 1)
    assert took < 15, f"docker-compose down took {took:.1f}s"
    assert not stack.container_ids("web")


def test_plain_docker_run_stops_promptly(image: str) -> None:
    """Without compose's `init: true`, `docker stop` must still stop web and worker in seconds:
    the Python process is PID 1 and has to act on SIGTERM itself."""
    tag = uuid.uuid4().hex[:8]
    net, redis, web, worker = (f"izzatie2e-{tag}-{n}" for n in ("net", "redis", "web", "worker"))
    try:
        docker.run([docker.DOCKER, "network", "create", net])
        docker.run([docker.DOCKER, "run", "-d", "--name", redis, "--network", net, "redis:7-alpine"])
        docker.run([docker.DOCKER, "run", "-d", "--name", web, image])  # the built-in example, memory://
        docker.run(
            [
                docker.DOCKER,
                "run",
                "-d",
                "--name",
                worker,
                "--network",
                net,
                "-e",
                f"IZZATI_QUEUE_URL=redis://{redis}:6379/0",
                image,
                "worker",
            ]
        )
        docker.wait("plain `docker run IMAGE` answering /health", lambda: _http_ok_inside(web), 60)
        docker.wait("plain `docker run IMAGE worker` started", lambda: "started" in docker.logs(worker), 60)
        for name, label in ((web, "web"), (worker, "worker")):
            t0 = time.monotonic()
            docker.run([docker.DOCKER, "stop", "-t", "10", name])
            took = time.monotonic() - t0
            TIMINGS[f"plain_docker_stop_{label}_s"] = round(took, 1)
            assert took < 5, (
                f"`docker stop` of a plain `docker run IMAGE {label}` took {took:.1f}s: "
                "Python as PID 1 ignores SIGTERM unless it installs a handler"
            )
    finally:
        docker.run([docker.DOCKER, "rm", "-f", "-v", web, worker, redis], check=False)  # -v: anonymous /data
        docker.run([docker.DOCKER, "network", "rm", net], check=False)
