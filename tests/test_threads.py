"""CPU threads per server process (`IZZATI_CPU_THREADS`, `izzati.threads`): several server
processes on one host share its cores instead of each starting a thread per core. Real
`python -m app` trees with torch and numpy imported before the fork, as a model's module does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from izzati import Backend, multiplex, threads
from tests.support.http import one_reply_from_each, wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc

Spawn = Callable[..., Proc]

pytest.importorskip("torch")
pytest.importorskip("threadpoolctl")


def _serve(spawn: Spawn, workers: int, **env: str) -> dict[int, dict[str, object]]:
    port = free_tcp_port()
    base = {
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_CALLBACK": "threadcount:report",
        "IZZATI_WORKERS": str(workers),
        "IZZATI_JOBS": "false",
    }
    proc = spawn([PYTHON, "-m", "app"], env={**base, **env})
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "ready", proc=proc.popen, timeout=60)
    return one_reply_from_each(url, workers)


def _own_defaults() -> tuple[int, list[int]]:
    """torch's and the BLAS libraries' threads in a fresh process with nothing set."""
    env = {k: v for k, v in os.environ.items() if k not in threads.VARIABLES}
    code = "import threadcount, json; print(json.dumps(threadcount.report({}, [])))"
    env["PYTHONPATH"] = str(Path(__file__).parent / "callbacks")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    reply = json.loads(out.stdout)
    return int(reply["torch"]), list(reply["blas"])


def test_two_processes_share_the_cores(spawn: Spawn) -> None:
    share = max(1, threads.usable_cores() // 2)
    seen = _serve(spawn, 2)
    assert len(seen) == 2
    for reply in seen.values():
        assert (reply["torch"], reply["blas"], reply["omp"]) == (share, [share], str(share)), reply


@pytest.mark.skipif(threads.usable_cores() < 2, reason="one core: a share and the defaults are both one thread")
def test_the_share_is_less_than_the_libraries_defaults() -> None:
    # what the test above would not tell apart on one core: the defaults are a thread per core
    torch_default, blas_default = _own_defaults()
    assert torch_default >= 2 and blas_default and min(blas_default) >= 2
    assert max(1, threads.usable_cores() // 2) < torch_default


def test_a_number_is_every_processs_count_even_alone(spawn: Spawn) -> None:
    [reply] = _serve(spawn, 1, IZZATI_CPU_THREADS="3").values()
    assert (reply["torch"], reply["blas"], reply["omp"]) == (3, [3], "3")


def test_zero_and_one_process_keep_the_libraries_defaults(spawn: Spawn) -> None:
    torch_default, blas_default = _own_defaults()
    for reply in _serve(spawn, 2, IZZATI_CPU_THREADS="0").values():
        assert (reply["torch"], reply["blas"], reply["omp"]) == (torch_default, blas_default, None), reply
    [alone] = _serve(spawn, 1).values()
    assert (alone["torch"], alone["blas"], alone["omp"]) == (torch_default, blas_default, None)


def test_a_batch_callback_alone_runs_two_batches_on_half_the_cores_each(spawn: Spawn) -> None:
    # one process on every core: the libraries' thread per core for a plain callback (above), but
    # half of them per batch and two batches at once for a batch callback that leaves it to izzati
    cores = threads.usable_cores()
    half = max(1, cores // 2)
    [alone] = _serve(spawn, 1, IZZATI_CALLBACK="threadcount:batched_report").values()
    assert (alone["torch"], alone["blas"], alone["omp"]) == (half, [half], str(half)), alone
    assert alone["batches_at_once"] == cores // half, alone
    quarter = max(1, cores // 2 // 2)
    for reply in _serve(spawn, 2, IZZATI_CALLBACK="threadcount:batched_report").values():
        assert (reply["torch"], reply["omp"]) == (quarter, str(quarter)), reply
        assert reply["batches_at_once"] == max(1, cores // 2 // quarter), reply
    # a batch callback that must run alone keeps every core for its one batch
    torch_default, blas_default = _own_defaults()
    [single] = _serve(spawn, 1, IZZATI_CALLBACK="threadcount:one_batch_at_a_time").values()
    assert (single["torch"], single["blas"], single["omp"]) == (torch_default, blas_default, None), single
    [chosen] = _serve(spawn, 1, IZZATI_CALLBACK="threadcount:batched_report", IZZATI_CPU_THREADS="0").values()
    assert (chosen["torch"], chosen["omp"], chosen["batches_at_once"]) == (torch_default, None, 1), chosen


def test_only_a_service_of_batch_callbacks_on_the_cpu_without_local_jobs_runs_two_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a multiplexed loader anywhere in the process (other tests import some) turns it off: this
    # process's flag as a fresh one has it, then set
    monkeypatch.setattr(multiplex, "IN_USE", False)

    def plain(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
        return {}

    def chat(request: Any) -> str:
        return ""

    from tests.callbacks import threadcount  # torch and numpy: after the importorskips above

    batched = threadcount.batched_report
    assert Backend(batched).two_batches(["cpu"])
    assert Backend({"/a": batched, "/b": batched}).two_batches(["cpu", "cpu"])
    assert not Backend(batched).two_batches(["cuda:0"])  # a GPU's batches: one at a time, as before
    assert not Backend({"/a": batched, "/b": plain}).two_batches(["cpu"])  # a plain route beside it
    assert not Backend(threadcount.one_batch_at_a_time).two_batches(["cpu"])  # max_concurrent=1
    assert not Backend(batched, chat={"m": chat}).two_batches(["cpu"])  # a chat model beside it
    assert not Backend(batched, jobs=True).two_batches(["cpu"])  # the job runner: one batch at a time
    monkeypatch.setattr(multiplex, "IN_USE", True)
    assert not Backend(batched).two_batches(["cpu"])  # a model per batch at once: more than max_models


def test_omp_num_threads_set_by_the_user_wins_over_auto(spawn: Spawn) -> None:
    for reply in _serve(spawn, 2, OMP_NUM_THREADS="2").values():
        assert (reply["torch"], reply["omp"]) == (2, "2"), reply


def test_thread_counts_are_checked() -> None:
    assert [threads.check(x) for x in ("auto", " AUTO ", "0", "04", 3)] == ["auto", "auto", "0", "4", "3"]
    for wrong in ("two", "-1", "1.5", ""):
        with pytest.raises(ValueError, match="is not a thread count"):
            threads.check(wrong)


def test_a_containers_cpu_quota_caps_the_cores(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_cores(v2) is None
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert threads.cgroup_cores(v2) == 1.5
    (v2 / "cpu.max").write_text("100000 100000\n")
    assert threads.usable_cores(v2) == 1  # whatever the affinity: the quota is one CPU
    assert threads.per_process("auto", 2, v2) == threads.Share(2, 1)
    # one process in a container allowed fewer CPUs than the machine has: the quota's count, not
    # the libraries' thread per core of the machine
    expected = threads.Share(1, 1) if (os.cpu_count() or 1) > 1 else threads.Share(1, None)
    assert threads.per_process("auto", 1, v2) == expected
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_cores(tmp_path / "v1") is None
    (v1 / "cpu.cfs_quota_us").write_text("50000\n")
    assert threads.cgroup_cores(tmp_path / "v1") == 0.5
    assert threads.usable_cores(tmp_path / "v1") == 1  # at least one


def test_per_process_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    cores = threads.usable_cores(tmp_path)
    assert threads.per_process("auto", 1, tmp_path) == threads.Share(1, None)
    assert threads.per_process("auto", 2, tmp_path) == threads.Share(2, max(1, cores // 2))
    assert threads.per_process("auto", 4 * cores, tmp_path) == threads.Share(4 * cores, 1)
    assert threads.per_process("5", 1, tmp_path) == threads.Share(1, 5)
    assert threads.per_process("0", 8, tmp_path) == threads.Share(8, None)
    # a service of batch callbacks that leave their concurrency to izzati: half the share a batch
    assert threads.per_process("auto", 1, tmp_path, batches=True) == threads.Share(1, max(1, cores // 2))
    assert threads.per_process("auto", 2, tmp_path, batches=True) == threads.Share(2, max(1, cores // 4))
    assert threads.per_process("5", 1, tmp_path, batches=True) == threads.Share(1, 5)
    assert threads.per_process("0", 1, tmp_path, batches=True) == threads.Share(1, None)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert threads.per_process("auto", 2, tmp_path) == threads.Share(2, None)
    assert threads.per_process("auto", 1, tmp_path, batches=True) == threads.Share(1, None)


def test_batches_at_once_under_each_share(monkeypatch: pytest.MonkeyPatch) -> None:
    cores = threads.usable_cores()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for share, omp, expected in [
        (threads.Share(), None, 1),  # the libraries' defaults: one batch takes every core
        (threads.Share(), "1", cores),  # one thread a batch: a batch per core
        (threads.Share(2, max(1, cores // 2)), None, 1),  # two processes, each its share
        (threads.Share(1, 1), None, cores),  # IZZATI_CPU_THREADS=1, one process
        (threads.Share(4 * cores, None), "1", 1),  # more processes than cores: at least one
    ]:
        monkeypatch.setattr(threads, "_share", share)
        if omp is None:
            monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        else:
            monkeypatch.setenv("OMP_NUM_THREADS", omp)
        assert threads.batches_at_once() == expected, (share, omp)
