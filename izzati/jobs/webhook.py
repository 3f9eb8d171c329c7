"""Telling a client's `callback_url` that its job ended: a JSON POST, retried with backoff."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from typing import Any

from .._process import backoff
from ..queues import mask_url
from .model import JobRecord, public_status

__all__ = ["post_status", "notify"]

logger = logging.getLogger("izzati.jobs")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post_status(url: str, status: dict[str, Any], attempts: int = 5, first_delay: float = 0.5) -> bool:
    """POST the final status as JSON to `url`, retrying with exponential backoff."""
    body = json.dumps(status).encode()
    delays = backoff(first_delay, float("inf"))
    # redirects are not followed: the status goes to the URL the client gave, nowhere else
    opener = urllib.request.build_opener(_NoRedirect)
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with opener.open(request, timeout=10) as response:
                if 200 <= response.status < 300:
                    return True
        except Exception as exc:  # any failure is retried the same way
            logger.warning("callback_url %s: attempt %d failed: %s", mask_url(url), attempt, exc)
        if attempt < attempts:
            time.sleep(next(delays))
    logger.error("callback_url %s: giving up after %d attempts", mask_url(url), attempts)
    return False


def notify(record: JobRecord) -> None:
    """Post the job's final status to its `callback_url`, if it has one, from a daemon thread."""
    url = record.get("callback_url")
    if url:
        threading.Thread(target=post_status, args=(url, public_status(record)), daemon=True).start()
