"""The HTTP side of jobs: submit (`POST /jobs`, or `Prefer: respond-async`), status, result, cancel."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope

from .._process import backoff
from ..exceptions import BadRequest, HTTPError
from ..jobs.events import FINAL, BadCursor, Event
from ..jobs.model import TERMINAL, JobRecord, JobStatus, ResultStream, public_status
from ..jobs.service import JobService
from .hangup import HangupWatch
from .models import requested_model
from .prefer import preferred_wait
from .responses import FileReturn, error_response, json_response
from .storepool import store_pool

__all__ = ["add_job_routes", "submit_job"]


async def submit_job(
    jobs: JobService,
    scope: Scope,
    receive: Receive,
    watch: HangupWatch,
    text: dict[str, Any],
    files: list[Any],
    route: str = "/",
) -> Response:
    """Store and queue the request; answer 202 with the job's status and a Location. With
    `Prefer: respond-async, wait=N` a job that ends within N seconds is answered as the
    synchronous call would be (`Preference-Applied: wait=N`); a client that hangs up meanwhile
    ends the wait (`watch` notices: `ClientDisconnected`), not the job."""
    headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
    callback_url = headers.get("callback-url") or text.pop("callback_url", None)
    key = headers.get("idempotency-key") or None
    model = requested_model(scope)
    submit = functools.partial(
        jobs.submit, text, files, idempotency_key=key, callback_url=callback_url, route=route, model=model
    )
    # files go to the object store: in its own threads, off the default executor where the probes run
    record = await (store_pool().run(submit) if files else asyncio.to_thread(submit))
    wait = preferred_wait(scope)
    if wait:  # wait=0: the client waits for nothing, so it gets the job (202) whatever the job's speed
        ended = await watch.wait(receive, _wait_for_end(jobs, record["id"], wait))
        if ended is not None and ended["status"] in (JobStatus.DONE, JobStatus.FAILED):
            reply = await _answer(lambda: _result_file(jobs, record["id"]), store=True)
            reply.headers["Preference-Applied"] = f"wait={wait:g}"
            return reply
        record = ended or record
    status = public_status(record)
    return json_response(status, 202, {"Location": status["url"], "Preference-Applied": "respond-async"})


async def _wait_for_end(jobs: JobService, job_id: str, seconds: float) -> JobRecord | None:
    """The job's record once it has ended, or its latest record after `seconds`."""
    deadline = time.monotonic() + seconds
    delays = backoff(0.005, 0.25)
    while True:
        record = await asyncio.to_thread(jobs.store.get, job_id)
        if record is None or record["status"] in TERMINAL or time.monotonic() >= deadline:
            return record
        await asyncio.sleep(min(next(delays), max(0.0, deadline - time.monotonic())))


def _result_file(jobs: JobService, job_id: str) -> Response:
    meta, body = jobs.result(job_id)
    status_code, media_type = int(meta.get("status_code", 200)), meta.get("media_type")
    response: Response
    if isinstance(body, ResultStream):
        # straight from the object store, a chunk at a time (Starlette reads a plain iterator
        # in its thread pool): the web process never holds the whole result
        length = {"Content-Length": str(body.size)}
        response = StreamingResponse(body.chunks, status_code, length, media_type)
    else:
        response = FileReturn(body, status_code=status_code, media_type=media_type, stat_result=os.stat(body))
    kept = meta.get("headers") or []
    pairs = kept.items() if isinstance(kept, dict) else kept  # a dict: results stored by izzati 2.0
    response.raw_headers.extend((str(k).lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in pairs)
    return response


async def _events(
    jobs: JobService, job_id: str, after: int, found: list[Event], request: Request
) -> AsyncIterator[bytes]:
    """The job's events (`found` first: those after the cursor `after`), as they are written,
    until its final one."""
    delays = backoff(0.02, 0.5)
    quiet_since = time.monotonic()
    while True:
        for cursor, kind, data in found:
            after = cursor
            yield f"id: {cursor}\nevent: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
            if kind in FINAL:
                return
        if found:
            delays, quiet_since = backoff(0.02, 0.5), time.monotonic()
        elif await request.is_disconnected() or not await asyncio.to_thread(jobs.store.exists, job_id):
            return  # the client left, or the job expired
        elif time.monotonic() - quiet_since > 15:
            quiet_since = time.monotonic()
            yield b": still running\n\n"  # keeps proxies from closing a quiet stream
        await asyncio.sleep(next(delays))
        found = await asyncio.to_thread(jobs.store.events, job_id, after)


_CURSOR = re.compile(r"\d{1,18}")  # what the stores give: a count or a byte offset, within int64


def _cursor(job_id: str, value: str) -> int:
    """The cursor of a `Last-Event-ID` header (0 when there is none)."""
    if not value:
        return 0
    if _CURSOR.fullmatch(value) is None:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise BadRequest(f"Last-Event-ID {shown!r} is not the id of an event of job {job_id}")
    return int(value)


async def _open_events(jobs: JobService, job_id: str, last_event_id: str) -> tuple[int, list[Event]] | Response:
    """The cursor and the first events of a stream, 204 when the client has seen the final
    event already, or the error reply (no such job, a Last-Event-ID never given)."""
    try:
        await asyncio.to_thread(jobs.status, job_id)
        after = _cursor(job_id, last_event_id)
        found = await asyncio.to_thread(jobs.store.events, job_id, after)
        if not found and await asyncio.to_thread(jobs.store.ended_at, job_id, after):
            return Response(status_code=204)  # nothing will come; EventSource reconnects on 200, not on 204
    except BadCursor as exc:
        return error_response(BadRequest(f"Last-Event-ID: {exc}"))
    except HTTPError as exc:
        return error_response(exc)
    return after, found


def _status_with_place(jobs: JobService, job_id: str) -> Response:
    """A job's public status; a queued one's also says its `position` and `eta` (ISO 8601)."""
    record = jobs.status(job_id)
    status = public_status(record)
    if record["status"] == JobStatus.QUEUED:
        position, seconds = jobs.position(job_id)
        eta = None if seconds is None else datetime.fromtimestamp(time.time() + seconds, UTC).isoformat()
        status.update(position=position, eta=eta)
    return json_response(status)


async def _answer(call: Callable[[], JobRecord | Response], status_code: int = 200, *, store: bool = False) -> Response:
    """Run a store call off the event loop (with `store`, one that reaches the object store: in
    the store's own threads); a record becomes its public status, an error its reply."""
    try:
        result = await (store_pool().run(call) if store else asyncio.to_thread(call))
    except HTTPError as exc:
        return error_response(exc)
    if isinstance(result, Response):
        return result
    return json_response(public_status(result), status_code)


def add_job_routes(app: FastAPI, jobs: JobService) -> None:
    """Register `GET /jobs/{id}`, `GET /jobs/{id}/result` and `DELETE /jobs/{id}`."""

    @app.get("/jobs/{job_id}", summary="A job's status", tags=["jobs"])
    async def job_status(job_id: str) -> Response:
        return await _answer(lambda: _status_with_place(jobs, job_id))

    @app.get("/jobs/{job_id}/events", summary="A job's events as Server-Sent Events, until it ends", tags=["jobs"])
    async def job_events(job_id: str, request: Request) -> Response:
        opened = await _open_events(jobs, job_id, request.headers.get("last-event-id", ""))
        if isinstance(opened, Response):
            return opened
        stream = _events(jobs, job_id, *opened, request)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)

    @app.get("/jobs/{job_id}/result", summary="A job's result: what the synchronous call would answer", tags=["jobs"])
    async def job_result(job_id: str) -> Response:
        return await _answer(lambda: _result_file(jobs, job_id), store=True)

    @app.delete("/jobs/{job_id}", status_code=202, summary="Cancel a job", tags=["jobs"])
    async def job_cancel(job_id: str) -> Response:
        def cancel() -> Response:
            # a job that already ended: its final state, 200 (nothing was cancelled), not 202
            record = jobs.status(job_id)
            if record["status"] in TERMINAL:
                return json_response(public_status(record), 200)
            return json_response(public_status(jobs.cancel(job_id)), 202)

        return await _answer(cancel)
