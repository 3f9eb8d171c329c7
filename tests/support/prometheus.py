"""A real Prometheus server's HTTP API: its targets and instant queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

__all__ = ["Prometheus"]


class Prometheus:
    """The HTTP API of the Prometheus at `base` (http://127.0.0.1:PORT)."""

    def __init__(self, base: str) -> None:
        self.base = base

    def _get(self, path: str, **params: str) -> Any:
        reply = httpx.get(self.base + path, params=params, timeout=10)
        body = reply.json()
        assert reply.status_code == 200 and body["status"] == "success", (path, params, reply.text)
        return body["data"]

    def targets(self, job: str) -> list[dict[str, Any]]:
        """The active targets of a scrape job (health, lastError, labels, scrapeUrl)."""
        return [t for t in self._get("/api/v1/targets", state="active")["activeTargets"] if t["labels"]["job"] == job]

    def healthy(self, job: str, count: int, since: datetime | None = None) -> bool:
        """Whether the job has exactly `count` targets, each scraped successfully (last scraped
        after `since`, an aware datetime, when given)."""
        targets = self.targets(job)
        fresh = since is None or all(datetime.fromisoformat(t["lastScrape"]) > since for t in targets)
        return len(targets) == count and all(t["health"] == "up" for t in targets) and fresh

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector: [{"metric": {...}, "value": [time, "1.0"]}, ...]."""
        data = self._get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single value of an instant query, or None when it has no series."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def version(self) -> str:
        """The server's version (/api/v1/status/buildinfo)."""
        return str(self._get("/api/v1/status/buildinfo")["version"])
