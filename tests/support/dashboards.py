"""The Grafana dashboard in monitoring/: its PromQL queries, the metric names they select and the
labels (and label values) they use."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import ROOT

__all__ = [
    "DASHBOARD",
    "Labels",
    "load_dashboard",
    "panels",
    "queries",
    "promql",
    "metric_names",
    "unknown_metrics",
    "unknown_labels",
    "exposed",
    "exposed_labels",
]

Labels = dict[str, dict[str, set[str]]]
"""Sample name -> label name -> the values a scrape shows."""

DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "izzati.json"

# the labels Prometheus adds to every series it scrapes (the target's)
TARGET_LABELS = {"job", "instance"}
# a regex that is only literal alternatives (`/metrics|/health`, no `.`): each one must be a real value
_LITERALS = re.compile(r"[\w/:-]+(?:\|[\w/:-]+)*")

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


def exposed_labels(text: str) -> Labels:
    """For each sample name of a scrape, its labels and the values each takes."""
    found: Labels = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = found.setdefault(sample.name, {})
            for name, value in sample.labels.items():
                labels.setdefault(name, set()).add(value)
    return found


def _selectors(node: Any) -> list[Any]:
    found: list[Any] = []

    def visit(inner: Any) -> bool:
        if isinstance(inner, promql_parser.VectorSelector):
            found.append(inner)
        return True

    promql_parser.walk(node, visit)
    return found


def _label_problems(expr: str, labels: Labels) -> set[str]:
    problems: set[str] = set()

    def known(node: Any) -> set[str]:  # the labels of the series a subexpression selects
        return TARGET_LABELS.union(*(labels.get(s.name or "", {}) for s in _selectors(node)))

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            values = labels.get(node.name or "", {})
            for matcher in node.matchers.matchers:
                name, value, op = matcher.name, matcher.value, matcher.op
                if name in TARGET_LABELS or name == "__name__":
                    continue
                if name not in values:
                    problems.add(f"{node.name} has no label {name!r}")
                    continue
                regex = op in (promql_parser.MatchOp.Re, promql_parser.MatchOp.NotRe)
                literals = value.split("|") if regex and _LITERALS.fullmatch(value) else [] if regex else [value]
                problems.update(
                    f"{node.name}{{{name}={one!r}}} is never exposed" for one in literals if one not in values[name]
                )
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            problems.update(
                f"{node.op} by/without {name!r}: no such label" for name in set(node.modifier.labels) - known(node.expr)
            )
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            used = set(node.modifier.matching.labels if node.modifier.matching else []) | set(
                node.modifier.group_labels or []
            )
            problems.update(f"on/ignoring/group {name!r}: no such label" for name in used - known(node))
        return True

    promql_parser.walk(promql_parser.parse(promql(expr)), visit)
    return problems


def unknown_labels(dashboard: dict[str, Any], labels: Labels) -> dict[str, set[str]]:
    """For each query using a label (or an exact label value) that no scraped series has: what."""
    unknown = {}
    for where, expr in queries(dashboard):
        problems = _label_problems(expr, labels)
        if problems:
            unknown[where] = problems
    return unknown
