"""A job's outcome: run its call, store its result (or the items it streams), and tell how it ended."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from ..exceptions import HTTPError
from .model import JobFailure, failure
from .results import stored_result
from .store import JobStore

__all__ = ["outcome"]

_INLINE_RESULT = 64 * 1024  # a JSON result up to this size rides in the `result` event itself

logger = logging.getLogger("izzati.jobs")


class _Cancelled(Exception):
    """A streamed job was cancelled between two items: its generator is closed, and nothing more written."""


def outcome(store: JobStore, job_id: str, call: Callable[[], Any]) -> tuple[JobFailure | None, bool, Any]:
    """Run the callback for one job and keep its result: the failure, if it failed, whether running it
    again may help (it raised, rather than answering an error on purpose), and the result for
    the events (the JSON itself when small, else where to fetch it)."""

    def item(value: Any) -> None:
        if store.cancel_requested(job_id):
            raise _Cancelled
        store.add_event(job_id, "item", value)

    try:
        stored = stored_result(call(), item)
    except _Cancelled:
        return None, False, None  # settled as cancelled by the runner
    except HTTPError as exc:
        return failure(exc.code, exc.detail, exc.status_code), False, None
    except Exception as exc:
        logger.exception("job %s: the callback raised %s", job_id, type(exc).__name__)
        return failure("callback_failed", f"the callback raised {type(exc).__name__}"), True, None
    try:
        if not store.cancel_requested(job_id):
            store.save_result(job_id, stored.meta, stored.body, stored.path)
    finally:
        if stored.after is not None:
            stored.after()  # e.g. file_return(..., delete_after=True)
    small_json = stored.meta["media_type"] == "application/json" and stored.body is not None
    if small_json and len(stored.body or b"") <= _INLINE_RESULT:
        return None, False, {"json": json.loads(stored.body or b"null")}
    return None, False, {"url": f"/jobs/{job_id}/result", "media_type": stored.meta["media_type"]}
