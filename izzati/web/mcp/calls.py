"""Running one MCP tool call: as an izzati job (progress, cancel, and a call that outlasts its wait
goes on as a job the client follows), or, in a service without jobs, as a direct call.

The MCP SDK (2.3) has no tasks on the server side (its 2025-11-25 task types are "types only"),
so a call still running after the door's wait answers with the job instead: a result whose
`structuredContent.job` is the job's status (`id`, `status`, `progress`, `url`), followed with
the `izzati_job` tool (or `GET /jobs/<id>`, `/events`, `/result` over HTTP).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types

from ..._process import backoff
from ...exceptions import HTTPError
from ...jobs import Hangup, current_request
from ...jobs.events import FINAL
from ...jobs.model import JobStatus, public_status
from ...jobs.service import JobService
from ..streaming import is_stream
from .tools import Tool, error_result, text_result

__all__ = ["Report", "run_as_job", "run_direct", "job_state"]

logger = logging.getLogger("izzati")

Report = Callable[[float | None, str | None], Awaitable[None]]
"""Sends one progress notification: the fraction done (0 to 1) and what the callback does."""

_MAX_INLINE = 1024 * 1024  # a result bigger than this is fetched over HTTP, not put in the tool result


async def run_as_job(jobs: JobService, text: dict[str, Any], report: Report, wait: float) -> types.CallToolResult:
    """Submit the call as a job and follow it for `wait` seconds: its progress events become
    progress notifications; the MCP client's cancel cancels the job (`izzati.cancelled()`)."""
    try:
        record = await asyncio.to_thread(jobs.submit, text, [])
    except HTTPError as exc:
        return error_result(exc.code, exc.detail)
    job_id = record["id"]
    try:
        return await _follow(jobs, job_id, report, wait)
    except BaseException:
        with anyio.CancelScope(shield=True):  # the call was cancelled (or failed): so is its job
            await anyio.to_thread.run_sync(_cancel_quietly, jobs, job_id)
        raise


def _cancel_quietly(jobs: JobService, job_id: str) -> None:
    try:
        jobs.cancel(job_id)
    except Exception:  # already gone: nothing left to cancel
        logger.debug("job %s could not be cancelled", job_id, exc_info=True)


async def _follow(jobs: JobService, job_id: str, report: Report, wait: float) -> types.CallToolResult:
    deadline = time.monotonic() + wait
    delays = backoff(0.005, 0.25)
    after = 0
    while True:
        found = await asyncio.to_thread(jobs.store.events, job_id, after)
        for cursor, kind, data in found:
            after = cursor
            if kind == "progress" and isinstance(data, dict):
                await report(data.get("fraction"), data.get("message"))
            elif kind in FINAL:
                return await asyncio.to_thread(job_state, jobs, job_id)
        if time.monotonic() >= deadline:
            return await asyncio.to_thread(job_state, jobs, job_id)
        await asyncio.sleep(min(next(delays), max(0.0, deadline - time.monotonic())))


def job_state(jobs: JobService, job_id: str) -> types.CallToolResult:
    """A job as a tool result: its result when done, its error when failed or cancelled, else
    its status under `job` (the call goes on)."""
    try:
        record = jobs.status(job_id)
    except HTTPError as exc:
        return error_result(exc.code, exc.detail)
    status = public_status(record)
    state = record["status"]
    if state == JobStatus.DONE:
        return _result_of(jobs, job_id)
    if state == JobStatus.FAILED:
        error = record.get("error") or {"error": "callback_failed", "detail": "the job failed"}
        return error_result(error["error"], error["detail"], job=status)
    if state == JobStatus.CANCELLED:
        return error_result("cancelled", f"job {job_id} was cancelled", job=status)
    text = f"job {job_id} is {state}: call the izzati_job tool with this job_id to follow it (or GET {status['url']})"
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content={"job": status})


def _result_of(jobs: JobService, job_id: str) -> types.CallToolResult:
    meta, body = jobs.result(job_id)
    url = f"/jobs/{job_id}/result"
    size = body.stat().st_size if isinstance(body, Path) else body.size
    if not meta.get("media_type", "").startswith("application/json") or size > _MAX_INLINE:
        if not isinstance(body, Path):
            getattr(body.chunks, "close", lambda: None)()  # releases its connection
        return error_result("not_json", f"the result is a {meta.get('media_type')} of {size} bytes: GET {url}")
    raw = body.read_bytes() if isinstance(body, Path) else b"".join(body.chunks)
    return text_result(json.loads(raw))


async def run_direct(tool: Tool, text: dict[str, Any]) -> types.CallToolResult:
    """Call the tool's callback here, as `POST /` would; the MCP client's cancel turns
    `izzati.cancelled()` true (an `async def` callback is cancelled)."""
    endpoint = tool.endpoint
    invoker = endpoint.invoker
    hangup = Hangup()
    current_request.set(hangup)
    pool = None if invoker.is_async else endpoint.pool
    try:
        if invoker.needs_setup and not invoker.ready:
            await asyncio.to_thread(invoker.setup)
        if invoker.batch is not None:
            result = await endpoint.batcher.submit(text, [])
        else:
            result = await invoker.call(text, [], pool=pool)
        if inspect.isasyncgen(result):
            result = [item async for item in result]
        elif is_stream(result):
            items = result
            result = await endpoint.pool.run(lambda: list(items))
        return text_result(result)
    except BaseException as exc:
        if not isinstance(exc, Exception):
            hangup.set()  # cancelled: the callback's cancelled() says so
            raise
        if isinstance(exc, HTTPError):
            return error_result(exc.code, exc.detail)
        logger.error("tool %s: the callback raised %s", tool.name, type(exc).__name__, exc_info=exc)
        return error_result("callback_failed", f"the callback raised {type(exc).__name__}")
