"""The Grafana dashboard in monitoring/: its PromQL queries and the metric names they select."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import ROOT

__all__ = ["DASHBOARD", "load_dashboard", "panels", "queries", "promql", "metric_names", "unknown_metrics", "exposed"]

DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "izzati.json"

# Grafana's own variables, replaced as Grafana does before the query reaches Prometheus
_GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    """The dashboard JSON."""
    dashboard: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return dashboard


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    found = [
        (f"panel {panel.get('title')!r} target {target.get('refId')}", str(target["expr"]))
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query)
            # label_values(metric, label) and query_result(expr) wrap a selector or an expression
            inner = re.fullmatch(r"\s*(?:label_values|query_result)\((.*?)(?:,\s*\w+)?\)\s*", text)
            found.append((f"variable {variable.get('name')!r}", inner.group(1) if inner else text))
    return found


def promql(expr: str) -> str:
    """The expression as Prometheus receives it from Grafana (its variables replaced)."""
    for name, value in _GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects; a selector without a name is an error."""
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            if not node.name:
                raise ValueError(f"a selector without a metric name in {expr!r}")
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(promql(expr)), visit)
    return names


def unknown_metrics(dashboard: dict[str, Any], exposed_names: set[str]) -> dict[str, set[str]]:
    """For each query naming a metric not in `exposed_names`: those names."""
    unknown = {}
    for where, expr in queries(dashboard):
        missing = metric_names(expr) - exposed_names
        if missing:
            unknown[where] = missing
    return unknown


def exposed(text: str) -> set[str]:
    """The sample names of a scrape (with the _total, _bucket, _sum and _count suffixes)."""
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}
