"""Job states and records (`izzati.jobs.model`)."""

from __future__ import annotations

import json

from izzati.jobs.model import TERMINAL, JobStatus, failure, new_job_id, new_record, public_status, valid_job_id


def test_states_are_strings_on_the_wire() -> None:
    assert json.dumps({"status": JobStatus.QUEUED}) == '{"status": "queued"}'
    assert JobStatus("running") is JobStatus.RUNNING
    assert TERMINAL == {JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED}
    assert "done" in TERMINAL  # records read back from JSON compare as plain strings too


def test_ids() -> None:
    job_id = new_job_id()
    assert valid_job_id(job_id) and len(job_id) == 32
    for bad in ("", "../etc", job_id.upper(), job_id + "0", "keys"):
        assert not valid_job_id(bad)


def test_a_new_record_and_its_public_status() -> None:
    record = new_record("a" * 32, callback_url="http://127.0.0.1:1/hook", key="k1")
    assert record["status"] is JobStatus.QUEUED and record["attempt"] == 0
    record["error"] = failure("callback_failed", "the callback raised ValueError")
    record["started"] = 0.0
    status = public_status(record)
    assert status == {
        "id": "a" * 32,
        "status": "queued",
        "attempt": 0,
        "progress": None,
        "created": status["created"],
        "started": "1970-01-01T00:00:00+00:00",
        "finished": None,
        "error": {"error": "callback_failed", "detail": "the callback raised ValueError"},
        "retry_at": None,
        "route": "/",
        "model": None,
        "url": f"/jobs/{'a' * 32}",
    }
    assert status["created"].endswith("+00:00")
    assert "callback_url" not in status and "idempotency_key" not in status
