"""GET /metrics and the worker's metrics port through real servers, parsed with prometheus-client's
own parser: counts match the requests sent, IZZATI_WORKERS=2 reports once (summed), the queue's
lag, pending count and oldest item on a real Redis, batches, jobs by state, the API key."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from izzati import Backend, RedisQueue
from izzati.metrics import DURATION_BUCKETS
from izzati.metrics.collect import Scrape, exposition
from tests.callbacks import batchmodel
from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc

Spawn = Callable[..., Proc]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape by (name, sorted labels)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def present(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; the sample must be in the scrape (where `value` reads a missing one as 0)."""
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"{name}{labels} is not in the scrape"
    return samples[key]


def scrape(url: str, **headers: str) -> Samples:
    reply = httpx.get(url + "metrics", headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(reply.text)


def start_app(spawn: Spawn, **env: str) -> str:
    port = free_tcp_port()
    full = {"IZZATI_HOST": "127.0.0.1", "IZZATI_PORT": str(port), "IZZATI_CALLBACK": "metered:handle", **env}
    proc = spawn([PYTHON, "-m", "app"], env=full)
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "health", proc=proc.popen)
    return url


def test_two_server_processes_report_once_and_counts_match_the_requests(spawn: Spawn) -> None:
    url = start_app(spawn, IZZATI_WORKERS="2")
    health_before = value(scrape(url), "izzati_requests_total", route="/health", method="GET", status="200")
    pids = set()
    with httpx.Client(timeout=30) as client:  # a new connection each time: both processes answer
        for _ in range(40):
            pids.add(httpx.post(url, data={"a": "1"}).json()["pid"])
        for _ in range(3):
            assert client.post(url, data={"fail": "1"}).status_code == 500
        for _ in range(5):
            assert client.get(url + "health").status_code == 200
        assert client.get(url + "jobs/0123456789abcdef0123456789abcdef").status_code == 404
    assert len(pids) == 2  # the counts below are sums over two processes
    samples = scrape(url)
    assert value(samples, "izzati_requests_total", route="/", method="POST", status="200") == 40
    assert value(samples, "izzati_requests_total", route="/", method="POST", status="500") == 3
    assert value(samples, "izzati_requests_total", route="/health", method="GET", status="200") == health_before + 5
    assert value(samples, "izzati_requests_total", route="/jobs/{id}", method="GET", status="404") == 1
    assert value(samples, "izzati_request_duration_seconds_count", route="/") == 43
    assert value(samples, "izzati_request_duration_seconds_bucket", route="/", le="+Inf") == 43
    assert value(samples, "izzati_callback_duration_seconds_count", where="web") == 43
    assert value(samples, "izzati_requests_in_flight") == 1  # this scrape
    assert value(samples, "izzati_jobs", state="queued") == 0
    assert value(samples, "izzati_queue_up", queue="memory") == 1
    assert value(samples, "izzati_workers_live", queue="memory") == 1  # the memory:// worker process
    again = scrape(url)  # a scrape counts itself afterwards, once
    assert value(again, "izzati_requests_total", route="/metrics", method="GET", status="200") == 2


def test_durations_are_seconds_in_the_right_buckets(spawn: Spawn) -> None:
    # a callback that sleeps 0.3 s: the server's figures lie between the sleep and what the client saw
    url = start_app(spawn)
    seen = []
    with httpx.Client(timeout=30) as client:
        for _ in range(3):
            began = time.perf_counter()
            assert client.post(url, data={"sleep": "0.3"}).status_code == 200
            seen.append(time.perf_counter() - began)
    samples = scrape(url)
    for name, labels in (
        ("izzati_callback_duration_seconds", {"where": "web"}),
        ("izzati_request_duration_seconds", {"route": "/"}),
    ):
        assert present(samples, name + "_count", **labels) == 3
        assert 0.9 <= present(samples, name + "_sum", **labels) <= sum(seen), (name, seen)
        for bound in DURATION_BUCKETS:
            counted = present(samples, name + "_bucket", **labels, le=str(bound))
            if bound < 0.3:
                assert counted == 0, (name, bound)
            else:  # each one at most what its client saw
                assert counted >= sum(took <= bound for took in seen), (name, bound, seen)
        assert present(samples, name + "_bucket", **labels, le="+Inf") == 3


def test_in_flight_requests_are_counted_while_they_run(spawn: Spawn) -> None:
    url = start_app(spawn)

    async def run() -> tuple[Samples, list[httpx.Response]]:
        async with httpx.AsyncClient(timeout=30) as client:
            slow = [asyncio.create_task(client.post(url, data={"sleep": "1.5"})) for _ in range(3)]
            await asyncio.sleep(0.7)
            during = parse((await client.get(url + "metrics")).text)
            return during, list(await asyncio.gather(*slow))

    during, replies = asyncio.run(run())
    assert [r.status_code for r in replies] == [200] * 3
    assert value(during, "izzati_requests_in_flight") == 4  # three slow calls and the scrape
    assert value(scrape(url), "izzati_requests_in_flight") == 1


def test_jobs_by_state(spawn: Spawn) -> None:
    url = start_app(spawn)
    ids = [httpx.post(url + "jobs", data={"n": str(i)}).json()["id"] for i in range(3)]
    ids.append(httpx.post(url + "jobs", data={"fail": "1"}).json()["id"])
    deadline = time.monotonic() + 30
    while any(httpx.get(f"{url}jobs/{job_id}").json()["status"] in ("queued", "running") for job_id in ids):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    samples = scrape(url)
    assert value(samples, "izzati_jobs", state="done") == 3
    assert value(samples, "izzati_jobs", state="failed") == 1
    assert value(samples, "izzati_callback_duration_seconds_count", where="job") == 4  # from the job runner process
    assert value(samples, "izzati_workers_live", queue="memory:jobs") == 1


def test_metrics_need_the_api_key_when_one_is_set_and_can_be_turned_off(spawn: Spawn) -> None:
    url = start_app(spawn, IZZATI_API_KEY="sesame")
    assert httpx.get(url + "metrics").status_code == 401
    assert value(scrape(url, Authorization="Bearer sesame"), "izzati_queue_up", queue="memory") == 1
    off = start_app(spawn, IZZATI_METRICS="false")
    assert httpx.get(off + "metrics").status_code == 404


def test_batch_sizes_are_counted(serve: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCH_LOG", str(tmp_path / "batches.log"))
    url = serve(Backend(batchmodel.predict, access_log=False).app) + "/"
    before = scrape(url)  # this test process may have counted batches before: compare

    async def send() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            await asyncio.gather(*(client.post(url, data={"n": str(i)}) for i in range(8)))

    asyncio.run(send())
    after = scrape(url)
    sizes = [int(line.split()[2]) for line in (tmp_path / "batches.log").read_text().splitlines()]
    count = value(after, "izzati_batch_size_count") - value(before, "izzati_batch_size_count")
    total = value(after, "izzati_batch_size_sum") - value(before, "izzati_batch_size_sum")
    assert (count, total) == (len(sizes), 8)
    assert value(after, "izzati_batch_size_bucket", le="4.0") - value(
        before, "izzati_batch_size_bucket", le="4.0"
    ) == len(sizes)


def test_redis_queue_lag_pending_oldest_age_and_dead_letters(redis_server: str) -> None:
    producer = RedisQueue(redis_server, name="m")
    consumer = RedisQueue(redis_server, name="m", prefetch=1)
    try:
        for i in range(5):
            producer.put({"i": i})
        time.sleep(0.3)
        assert consumer.get(timeout=5) == {"i": 0}  # taken, not acknowledged: pending
        samples = parse(exposition(Scrape([("m", producer, None)])).decode())
        assert value(samples, "izzati_queue_length", queue="m") == 5
        assert value(samples, "izzati_queue_lag", queue="m") == 4  # the backlog no worker took
        assert value(samples, "izzati_queue_pending", queue="m") == 1
        assert 0.3 <= value(samples, "izzati_queue_oldest_age_seconds", queue="m") < 30
        assert value(samples, "izzati_workers_live", queue="m") == 1  # the consumer's heartbeat
        consumer.reject("poison")
        samples = parse(exposition(Scrape([("m", producer, None)])).decode())
        assert value(samples, "izzati_dead_letters", queue="m") == 1
        assert value(samples, "izzati_queue_pending", queue="m") == 0
    finally:
        consumer.close()
        producer.close()


def test_a_scrape_reports_a_broker_that_is_down_without_failing() -> None:
    down = RedisQueue(f"redis://127.0.0.1:{free_tcp_port()}/0", name="gone", connect_timeout=0.2)
    samples = parse(exposition(Scrape([("gone", down, None)])).decode())
    assert value(samples, "izzati_queue_up", queue="gone") == 0


def test_a_worker_serves_its_metrics_on_the_metrics_port(redis_server: str, spawn: Spawn) -> None:
    port = free_tcp_port()
    env = {
        "IZZATI_QUEUE_URL": redis_server,
        "IZZATI_WORKER": "metered:process",
        "IZZATI_CALLBACK": "metered:handle",
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_METRICS_PORT": str(port),
    }
    spawn([PYTHON, "-m", "app", "worker"], env=env)
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "metrics")
    queue = RedisQueue(redis_server)
    for i in range(7):
        queue.put(i)
    deadline = time.monotonic() + 20
    while (
        value(samples := parse(httpx.get(url + "metrics").text), "izzati_queue_items_taken_total", queue="izzati") < 7
    ):
        assert time.monotonic() < deadline, samples
        time.sleep(0.1)
    assert value(samples, "izzati_queue_items_taken_total", queue="izzati") == 7
    assert value(samples, "izzati_workers_live", queue="izzati") == 1
    queue.close()


def _listening_addresses(port: int) -> set[str]:
    """The local addresses (IPv4, dotted) with a socket listening on `port`, from /proc/net/tcp."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":
            found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return found


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def test_the_worker_metrics_port_is_private_by_default_and_holds_no_thread_per_connection(
    redis_server: str, spawn: Spawn
) -> None:
    port = free_tcp_port()
    env = {
        "IZZATI_QUEUE_URL": redis_server,
        "IZZATI_WORKER": "metered:process",
        "IZZATI_HOST": "0.0.0.0",  # what the web side of a container listens on: not the metrics port
        "IZZATI_METRICS_PORT": str(port),
    }
    worker = spawn([PYTHON, "-m", "app", "worker"], env=env)
    url = f"http://127.0.0.1:{port}/metrics"
    wait_for_http(url)
    assert _listening_addresses(port) == {"127.0.0.1"}
    before = _threads(worker.popen.pid)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]  # connect, send nothing
    try:
        assert "izzati_queue_up" in httpx.get(url, timeout=10).text  # answered meanwhile
        assert _threads(worker.popen.pid) <= before + 2, (before, _threads(worker.popen.pid))
    finally:
        for sock in idle:
            sock.close()


def test_the_worker_metrics_host_is_a_setting(redis_server: str, spawn: Spawn) -> None:
    port = free_tcp_port()
    env = {
        "IZZATI_QUEUE_URL": redis_server,
        "IZZATI_WORKER": "metered:process",
        "IZZATI_METRICS_HOST": "0.0.0.0",
        "IZZATI_METRICS_PORT": str(port),
    }
    spawn([PYTHON, "-m", "app", "worker"], env=env)
    wait_for_http(f"http://127.0.0.1:{port}/metrics")
    assert _listening_addresses(port) == {"0.0.0.0"}
