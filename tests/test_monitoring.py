"""monitoring/ without containers: the Grafana dashboard's queries against the metric names a real
izzati service exposes (a real web server on a real Redis, with jobs and batches, and a real
worker's metrics port), the dashboard's layout, Grafana's provisioning files, and prometheus.yml
and the dashboard's PromQL through Debian's promtool. The stack itself (Prometheus scraping web
and workers) is tested in tests/test_compose.py."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from izzati import RedisQueue
from tests.support.dashboards import (
    Labels,
    exposed,
    exposed_labels,
    load_dashboard,
    metric_names,
    panels,
    promql,
    queries,
    unknown_labels,
    unknown_metrics,
)
from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, ROOT, Proc

Spawn = Callable[..., Proc]
MONITORING = ROOT / "monitoring"
PROMETHEUS_YML = MONITORING / "prometheus" / "prometheus.yml"


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose


def _mounts(service: str) -> dict[str, str]:
    """A compose service's bind mounts: source (relative to the repository) -> target."""
    mounts = {}
    for volume in _compose()["services"][service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[source[2:]] = target
    return mounts


def _documented_metrics() -> set[str]:
    """The metric families of the table in docs/metrics.md."""
    text = (ROOT / "docs" / "metrics.md").read_text()
    return set(re.findall(r"^\| `(izzati_\w+)` \|", text, re.MULTILINE))


def _scrape(url: str) -> str:
    reply = httpx.get(url, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.text


def _until(what: str, predicate: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def scrapes(redis_server: str, spawn: Spawn, tmp_path: Path) -> list[str]:
    """A real service's scrapes: a web server (a batch callback, jobs, a redis:// queue) and a
    worker's metrics port, after requests, a batch, a job and queue items."""
    metrics_port, web_port = free_tcp_port(), free_tcp_port()
    common = {
        "IZZATI_QUEUE_URL": redis_server,
        # a batch callback at /, and a multiplexed one (its models' load and eviction metrics)
        "IZZATI_ROUTES": "/=batchmodel:predict,/models=multiplexed:Classifier",
        "IZZATI_JOB_DIR": str(tmp_path / "jobs"),
        "IZZATI_HOST": "127.0.0.1",
    }
    worker = {**common, "IZZATI_WORKER": "metered:process", "IZZATI_METRICS_PORT": str(metrics_port)}
    spawn([PYTHON, "-m", "app", "worker"], env=worker)
    web = spawn([PYTHON, "-m", "app"], env={**common, "IZZATI_PORT": str(web_port)})
    url = f"http://127.0.0.1:{web_port}/"
    wait_for_http(url + "health", proc=web.popen)
    wait_for_http(f"http://127.0.0.1:{metrics_port}/metrics")

    async def requests() -> None:  # concurrent calls, so the batch callback gets a batch
        async with httpx.AsyncClient(timeout=30) as client:
            replies = await asyncio.gather(*(client.post(url, data={"n": str(i)}) for i in range(6)))
        assert [r.status_code for r in replies] == [200] * 6

    asyncio.run(requests())
    for model in ("m0", "m1", "m2", "m3"):  # max_models=3: the fourth evicts one
        reply = httpx.post(url + "models", data={"n": "1"}, headers={"Izzati-Model": model}, timeout=30)
        assert reply.status_code == 200, reply.text
    assert httpx.post(url + "models", headers={"Izzati-Model": "nope"}, timeout=30).status_code == 404
    job = httpx.post(url + "jobs", data={"n": "1"}, timeout=30).json()["id"]
    _until("the job done by the worker", lambda: httpx.get(f"{url}jobs/{job}").json()["status"] == "done")
    queue = RedisQueue(redis_server)
    try:
        for i in range(3):
            queue.put({"i": i})
        worker_url = f"http://127.0.0.1:{metrics_port}/metrics"
        _until("the worker's taken items", lambda: "izzati_queue_items_taken_total{" in _scrape(worker_url))
    finally:
        queue.close()
    assert httpx.get(url + "ready", timeout=30).status_code in (200, 503)
    _scrape(url + "metrics")  # a scrape is counted after it: the next one shows route="/metrics"
    return [_scrape(url + "metrics"), _scrape(worker_url)]


def _labels(scrapes: list[str]) -> Labels:
    merged: Labels = {}
    for text in scrapes:
        for name, labels in exposed_labels(text).items():
            for label, values in labels.items():
                merged.setdefault(name, {}).setdefault(label, set()).update(values)
    return merged


def test_every_dashboard_query_names_a_metric_a_real_service_exposes(scrapes: list[str]) -> None:
    exposed_names = set().union(*map(exposed, scrapes))
    dashboard = load_dashboard()
    assert queries(dashboard) and exposed_names and _documented_metrics()  # nothing checked passes nothing
    assert unknown_metrics(dashboard, exposed_names) == {}
    # every label a query uses (selectors, by/without, on/ignoring) is on the series it selects
    assert unknown_labels(dashboard, _labels(scrapes)) == {}
    used = set().union(*(metric_names(expr) for _, expr in queries(dashboard)))
    # the dashboard shows every metric of the table in docs/metrics.md (under one of its series)
    families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    assert _documented_metrics() - families == set()
    assert _documented_metrics() <= {re.sub(r"_(bucket|sum|count)$", "", n) for n in exposed_names}


def test_the_check_catches_a_label_no_series_has() -> None:
    scrape = (
        '# TYPE izzati_jobs gauge\nizzati_jobs{state="done"} 1.0\nizzati_jobs{state="queued"} 0.0\n'
        "# TYPE d histogram\n"
        'd_bucket{le="1.0",where="web"} 1.0\nd_bucket{le="+Inf",where="web"} 1.0\nd_count{where="web"} 1.0\n'
    )
    labels = exposed_labels(scrape)

    def problems(expr: str) -> dict[str, set[str]]:
        return unknown_labels({"panels": [{"title": "t", "targets": [{"refId": "A", "expr": expr}]}]}, labels)

    assert problems('sum by (le, where) (rate(d_bucket[5m])) + max by (instance) (izzati_jobs{state="done"})') == {}
    assert problems("sum by (le, wherre) (rate(d_bucket[5m]))") == {
        "panel 't' target A": {"sum by/without 'wherre': no such label"}
    }
    assert problems('max(izzati_jobs{state="donee"})') == {
        "panel 't' target A": {"izzati_jobs{state='donee'} is never exposed"}
    }
    assert problems('max(izzati_jobs{state=~"done|donee"})') == {
        "panel 't' target A": {"izzati_jobs{state='donee'} is never exposed"}
    }
    assert problems('max(izzati_jobs{stat="done"})') == {"panel 't' target A": {"izzati_jobs has no label 'stat'"}}
    assert problems("d_count / on(where, route) izzati_jobs") == {
        "panel 't' target A": {"on/ignoring/group 'route': no such label"}
    }


def test_the_check_catches_a_metric_no_service_exposes() -> None:
    dashboard = load_dashboard()
    names = set().union(*(metric_names(expr) for _, expr in queries(dashboard)))
    assert unknown_metrics(dashboard, names) == {}
    without = names - {"izzati_queue_lag"}
    assert set().union(*unknown_metrics(dashboard, without).values()) == {"izzati_queue_lag"}
    typo = {"panels": [{"title": "t", "targets": [{"refId": "A", "expr": "rate(izzati_request_total[5m])"}]}]}
    assert unknown_metrics(typo, names) == {"panel 't' target A": {"izzati_request_total"}}
    nameless = {"panels": [{"title": "t", "targets": [{"refId": "A", "expr": 'sum({route="/"})'}]}]}
    with pytest.raises(ValueError, match="without a metric name"):
        unknown_metrics(nameless, names)


def test_dashboard_layout_and_datasource() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    [variable] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        columns, rows = range(grid["x"], grid["x"] + grid["w"]), range(grid["y"], grid["y"] + grid["h"])
        area = {(x, y) for x in columns for y in rows}
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel["description"], panel
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"] and target["expr"].strip()
            assert target.get("format") == ("heatmap" if panel["type"] == "heatmap" else None)
    # the broker-level gauges are the same on every target: never summed over targets
    for where, expr in queries(dashboard):
        for gauge in ("izzati_queue_lag", "izzati_queue_length", "izzati_queue_pending", "izzati_workers_live"):
            if gauge in expr:
                assert re.search(rf"\b(max|min) by \(\w+\) \({gauge}\)", expr), (where, expr)


def test_grafana_provisioning_matches_the_compose_file() -> None:
    grafana = _mounts("grafana")
    provisioning = MONITORING / "grafana" / "provisioning"
    assert grafana["monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"
    [datasource_file] = (provisioning / "datasources").glob("*.yml")
    datasources = yaml.safe_load(datasource_file.read_text())
    assert datasources["apiVersion"] == 1
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus" and source["access"] == "proxy" and source["isDefault"] is True
    # http://prometheus:9090: the compose service and the port Prometheus listens on in it
    container_port = _compose()["services"]["prometheus"]["ports"][0].rsplit(":", 1)[1].strip('"')
    assert source["url"] == f"http://prometheus:{container_port}"
    scrape_interval = yaml.safe_load(PROMETHEUS_YML.read_text())["global"]["scrape_interval"]
    assert source["jsonData"]["timeInterval"] == scrape_interval  # $__rate_interval depends on it
    [provider_file] = (provisioning / "dashboards").glob("*.yml")
    providers = yaml.safe_load(provider_file.read_text())
    assert providers["apiVersion"] == 1
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    dashboards = grafana["monitoring/grafana/dashboards"]
    assert provider["options"]["path"] == dashboards
    home = _compose()["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (MONITORING / "grafana" / "dashboards" / Path(home).relative_to(dashboards)).is_file()


def test_prometheus_config_matches_the_compose_file() -> None:
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"izzati-web", "izzati-worker"}
    start = (MONITORING / "prometheus" / "start.sh").read_text()
    web = jobs["izzati-web"]
    [files] = web["file_sd_configs"]
    assert files["files"] == ["/run/izzati/web.json"] and '>"$dir/web.json"' in start
    assert web["authorization"]["credentials_file"] == "/run/izzati/api-key" and '>"$dir/api-key"' in start
    prometheus = _compose()["services"]["prometheus"]
    assert "dir=/run/izzati " in start and prometheus["tmpfs"] == ["/run/izzati"]
    [dns] = jobs["izzati-worker"]["dns_sd_configs"]
    worker = _compose()["services"]["worker"]
    assert dns["names"] == ["worker"] and dns["type"] == "A"
    assert dns["port"] == int(worker["environment"]["IZZATI_METRICS_PORT"])
    assert "ports" not in worker, "a worker's metrics port (no API key) is never published"
    assert all(port.startswith('"127.0.0.1:') or port.startswith("127.0.0.1:") for port in prometheus["ports"])
    assert _mounts("prometheus")["monitoring/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: apt-get install -y prometheus (scripts/test does)")
    return promtool


def test_promtool_accepts_prometheus_yml(tmp_path: Path) -> None:
    promtool = _promtool()
    syntax = subprocess.run([promtool, "check", "config", "--syntax-only", str(PROMETHEUS_YML)], capture_output=True)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    # the full check also reads the files it names: make them as start.sh does, somewhere here
    (tmp_path / "web.json").write_text('[{"targets": ["web:5020"]}]\n')
    (tmp_path / "api-key").write_text("")
    copy = tmp_path / "prometheus.yml"
    copy.write_text(PROMETHEUS_YML.read_text().replace("/run/izzati/", f"{tmp_path}/"))
    full = subprocess.run([promtool, "check", "config", str(copy)], capture_output=True, text=True)
    assert full.returncode == 0, full.stdout + full.stderr
    assert "SUCCESS" in full.stdout


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Prometheus's own parser, not only the one the metric-name check uses."""
    exprs = [promql(expr) for _, expr in queries(load_dashboard())]
    rules = [{"record": f"izzati:dashboard:{n}", "expr": expr} for n, expr in enumerate(exprs)]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    check = subprocess.run([_promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(rules)} rules found" in check.stdout
