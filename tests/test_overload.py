"""Backpressure: beyond IZZATI_MAX_INFLIGHT a request gets 503 `overloaded` at once, with a
Retry-After from the measured service time, through a real uvicorn server."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from izzati import Backend


def test_beyond_max_inflight_requests_get_a_json_503_with_retry_after(serve: Callable[..., str]) -> None:
    def slow(text: dict[str, Any], data: list[Any]) -> dict[str, str]:
        time.sleep(0.3)
        return {"ok": "yes"}

    url = serve(Backend(slow, threads=2, max_inflight=4).app) + "/"
    assert httpx.post(url).json() == {"ok": "yes"}  # one call measured: about 0.3 s

    def call(_: int) -> httpx.Response:
        return httpx.post(url, data={"x": "1"}, timeout=30)

    with ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(call, range(12)))
    accepted = [r for r in replies if r.status_code == 200]
    refused = [r for r in replies if r.status_code == 503]
    assert len(accepted) + len(refused) == 12
    assert len(accepted) >= 4 and refused  # at most 4 at a time were let in
    for reply in refused:
        assert reply.headers["content-type"] == "application/json"
        assert reply.json()["error"] == "overloaded" and "IZZATI_MAX_INFLIGHT=4" in reply.json()["detail"]
        assert int(reply.headers["retry-after"]) >= 1


def test_retry_after_follows_the_measured_service_time(serve: Callable[..., str]) -> None:
    def slower(text: dict[str, Any], data: list[Any]) -> dict[str, str]:
        time.sleep(float(text.get("s", "2.5")))
        return {}

    url = serve(Backend(slower, threads=1, max_inflight=1).app) + "/"
    httpx.post(url, data={"s": "2.5"}, timeout=30)  # measured: 2.5 s a call
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(httpx.post, url, data={"s": "2.5"}, timeout=30)
        time.sleep(0.3)
        refused = httpx.post(url)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "3"  # one call ahead, one thread: 2.5 s, rounded up
        assert busy.result().status_code == 200
