"""How a job runner calls the callback on the jobs it started: one call per job, or one call of a
batch callback per group of jobs that name the same model (`Izzati-Model`), as the web side batches."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from typing import Any

from ..batching import split_results
from ..files import UploadedFile
from ..invoker import Invoker, describe
from ..metrics import RECORDER
from ..modelcontext import using
from . import JobContext, current_job
from .model import JobFailure
from .outcome import outcome
from .store import JobStore

__all__ = ["Started", "Outcome", "call_each", "call_batched"]

Started = tuple[str, dict[str, Any], list[UploadedFile], Invoker, str | None]
"""A job marked running: its id, text and files, the invoker of its route, and its model id."""

Outcome = tuple[JobFailure | None, bool, Any]
"""How a job ended: its failure, whether running it again may help, its result (see `outcome`)."""


def _unwrap(result: Any) -> Any:
    """A batch item's result; its exception raised."""
    if isinstance(result, BaseException):
        raise result
    return result


def call_each(
    store: JobStore, started: list[Started], span: Callable[[str], contextlib.AbstractContextManager[Any]]
) -> list[Outcome]:
    """One call per job, each in its `span`, with the model its request named."""
    outcomes = []
    for job_id, text, uploads, invoker, model in started:
        token = current_job.set(JobContext(store, job_id))  # progress() and cancelled() know the job
        began = time.perf_counter()
        try:
            with span(job_id), using(model):
                outcomes.append(outcome(store, job_id, functools.partial(invoker.call_sync, text, uploads)))
        finally:
            current_job.reset(token)
            RECORDER.callback("job", time.perf_counter() - began)
    return outcomes


def call_batched(store: JobStore, started: list[Started]) -> list[Outcome]:
    """One call of the batch callback per model the jobs name, in the order each model first comes;
    the outcomes in the jobs' order."""
    groups: dict[str | None, list[int]] = {}
    for index, (*_, model) in enumerate(started):
        groups.setdefault(model, []).append(index)
    outcomes: dict[int, Outcome] = {}
    for model, members in groups.items():
        group = [started[index] for index in members]
        with using(model):
            for index, result in zip(members, _batch(group), strict=True):
                outcomes[index] = outcome(store, started[index][0], functools.partial(_unwrap, result))
    return [outcomes[index] for index in range(len(started))]


def _batch(group: list[Started]) -> list[Any]:
    """Each job's result from one call of the batch callback (its exception when the call failed)."""
    invoker = group[0][3]  # the same for all: several routes take one job at a time
    began = time.perf_counter()
    try:
        returned = invoker.call_sync([(text, uploads) for _, text, uploads, *_ in group])
        RECORDER.batch(len(group), time.perf_counter() - began)
        return split_results(returned, len(group), describe(invoker.callback))
    except Exception as exc:  # the whole batch fails: every job gets this error
        return [exc] * len(group)
