"""The isolated worker: reused across artifacts, Keras imported only when a model is loaded,
and a crash, hang or memory blow-up fails that artifact only."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from builders.gate_artifacts import message, run_gate, stage, status

from pytest_kerasmodel.gate.protocol import CHECKS, Request
from pytest_kerasmodel.gate.workers.isolation import WorkerRunner


@functools.cache
def _h5py_segfaults_on(path: Path) -> bool:
    """Whether plain h5py, without the gate, dies by SIGSEGV reading the file's attributes:
    the crash is the HDF5 library's (1.14 here), and a fixed HDF5 skips the crash tests."""
    code = (
        "import h5py, sys\n"
        "f = h5py.File(sys.argv[1], 'r')\n"
        "f.visititems(lambda name, obj: [dict(obj.attrs)] and None)\n"
    )
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=60)
    return run.returncode == -signal.SIGSEGV


def _needs_segfault(gate_files: dict[str, Path]) -> None:
    if not _h5py_segfaults_on(gate_files["segv.h5"]):
        pytest.skip("this HDF5 library no longer crashes on the crafted file")


def _request(path: Path, checks: list[str]) -> dict[str, Any]:
    return asdict(Request(path=str(path), checks=checks))


def test_one_worker_serves_every_artifact_and_imports_keras_only_to_load(
    gate_files: dict[str, Path],
) -> None:
    runner = WorkerRunner(timeout=60, memory_limit_mb=4096)
    try:
        files_only = ["integrity", "safety", "finite", "budgets"]
        first = runner.run(_request(gate_files["clf.keras"], files_only))
        second = runner.run(_request(gate_files["clf.h5"], files_only))
        assert first["checks"]["finite"]["status"] == "passed"
        pid = first["worker"]["pid"]
        assert [(r["worker"]["pid"], r["worker"]["keras"]) for r in (first, second)] == [
            (pid, False),
            (pid, False),
        ]
        loaded = runner.run(_request(gate_files["clf.h5"], ["load"]))
        assert loaded["checks"]["load"]["status"] == "passed"
        assert (loaded["worker"]["pid"], loaded["worker"]["keras"]) == (pid, True)
        assert runner.started == 1
    finally:
        runner.close()


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux's")
def test_the_worker_runs_as_a_batch_job(gate_files: dict[str, Path]) -> None:
    """A woken worker must not take the core from the pytest process that wrote to it."""
    runner = WorkerRunner(timeout=60, memory_limit_mb=4096)
    try:
        answer = runner.run(_request(gate_files["clf.keras"], ["integrity"]))
        assert os.sched_getscheduler(answer["worker"]["pid"]) == os.SCHED_BATCH
        assert os.sched_getscheduler(0) != os.SCHED_BATCH  # this process is left as it was
    finally:
        runner.close()


def test_a_prefetched_answer_is_read_late_and_an_unasked_one_is_drained(
    gate_files: dict[str, Path],
) -> None:
    runner = WorkerRunner(timeout=60, memory_limit_mb=4096)
    files_only = ["integrity", "safety", "finite"]
    try:
        runner.run(_request(gate_files["clf.h5"], ["integrity"]))  # the worker is up
        runner.timeout = 0.5
        ahead = _request(gate_files["clf.keras"], files_only)
        runner.prefetch(ahead)
        time.sleep(0.8)  # pytest reports other items longer than the time limit
        late = runner.run(ahead)  # answered in time, read late: not a timeout
        assert {c: r["status"] for c, r in late["checks"].items()} == dict.fromkeys(
            files_only, "passed"
        )
        assert late["elapsed"] < 0.5  # the worker's own time, not the wait for the reader
        runner.timeout = 60
        runner.prefetch(_request(gate_files["clf.keras"], ["integrity"]))
        other = runner.run(_request(gate_files["clf.h5"], ["finite"]))  # not the one sent
        assert other["path"] == str(gate_files["clf.h5"])  # not the drained answer
        assert other["checks"]["finite"]["status"] == "passed"
        assert other["worker"]["pid"] == late["worker"]["pid"] and runner.started == 1
        runner.prefetch(_request(gate_files["clf.keras"], ["load"]))
    finally:
        start = time.monotonic()
        runner.close()  # with an answer nobody will read: the worker is stopped, not awaited
    assert time.monotonic() - start < 2


def test_a_worker_holds_depth_requests_and_keeps_answers_read_out_of_order(
    gate_files: dict[str, Path],
) -> None:
    runner = WorkerRunner(timeout=60, memory_limit_mb=4096, depth=2)
    files_only = ["integrity", "safety", "finite"]
    first = _request(gate_files["clf.keras"], files_only)
    second = _request(gate_files["clf.h5"], files_only)
    third = _request(gate_files["nan.keras"], files_only)
    try:
        assert runner.prefetch(first) and runner.prefetch(second)
        assert not runner.prefetch(third)  # two in the pipe already
        assert runner.queued_requests() == [first, second]
        # the second asked first: the first's answer is read on the way and kept
        late = runner.run(second)
        assert late["path"] == second["path"] and runner.holds_path(first["path"])
        assert runner.prefetch(third)
        early = runner.run(first)
        assert early["path"] == first["path"]
        assert (
            early["checks"]["finite"]["status"] == late["checks"]["finite"]["status"] == ("passed")
        )
        nan = runner.run(third)
        assert nan["checks"]["finite"]["status"] == "failed"
        assert {a["worker"]["pid"] for a in (early, late, nan)} == {nan["worker"]["pid"]}
        assert runner.started == 1 and runner.queued == 0
    finally:
        runner.close()


def test_drain_reads_finished_answers_without_waiting_and_keeps_them(
    gate_files: dict[str, Path],
) -> None:
    runner = WorkerRunner(timeout=60, memory_limit_mb=4096, depth=2)
    files_only = ["integrity", "safety", "finite"]
    first = _request(gate_files["clf.keras"], files_only)
    second = _request(gate_files["nan.keras"], files_only)
    try:
        runner.drain()  # no worker yet: nothing to read, nothing started
        assert runner.started == 0
        assert runner.prefetch(first) and runner.prefetch(second)
        deadline = time.monotonic() + 60
        while runner.queued and time.monotonic() < deadline:
            runner.drain()  # returns at once whether or not the worker has finished
            time.sleep(0.02)
        assert runner.queued == 0  # both answers read: the worker has room for two more
        assert runner.holds_path(first["path"]) and runner.holds_path(second["path"])
        assert runner.prefetch(_request(gate_files["clf.h5"], files_only))
        healthy, nan = runner.run(first), runner.run(second)  # the answers kept
        assert healthy["checks"]["finite"]["status"] == "passed"
        assert nan["checks"]["finite"]["status"] == "failed"
        assert healthy["worker"]["pid"] == nan["worker"]["pid"] and runner.started == 1
    finally:
        runner.close()


def test_a_request_read_long_after_it_was_sent_gets_the_whole_start_up_allowance(
    gate_files: dict[str, Path],
) -> None:
    """The allowance before the worker begins a request runs from when its answer is read: a
    request that waited behind others in a worker's pipe does not time out for the time they
    took."""
    runner = WorkerRunner(timeout=60, memory_limit_mb=4096, depth=2)
    request = _request(gate_files["clf.keras"], ["integrity"])
    try:
        assert runner.prefetch(request)
        runner._queue[0].sent_at -= 3600  # as if it had waited an hour behind others
        answer = runner.run(request)
        assert answer["checks"]["integrity"]["status"] == "passed", answer
    finally:
        runner.close()


def test_a_request_behind_one_that_crashes_its_worker_runs_in_a_fresh_one(
    gate_files: dict[str, Path],
) -> None:
    _needs_segfault(gate_files)
    runner = WorkerRunner(timeout=60, memory_limit_mb=4096, depth=2)
    crashing = _request(gate_files["segv.h5"], ["integrity"])
    behind = _request(gate_files["nan.keras"], ["integrity", "finite"])
    try:
        assert runner.prefetch(crashing) and runner.prefetch(behind)
        crashed = runner.run(crashing)
        assert "(signal SIGSEGV)" in crashed["checks"]["integrity"]["message"]
        # no message of an earlier request is quoted as this one's
        assert "last messages of the worker" not in crashed["checks"]["integrity"]["message"]
        assert not runner.holds_path(behind["path"])  # lost with the worker
        after = runner.run(behind)
        assert after["checks"]["integrity"]["status"] == "passed"
        assert after["checks"]["finite"]["status"] == "failed"  # its own verdict
        assert runner.started == 2
    finally:
        runner.close()


def test_a_worker_error_is_reported_and_leaves_nothing_for_the_next_request(
    gate_files: dict[str, Path],
) -> None:
    runner = WorkerRunner(timeout=60, memory_limit_mb=4096)
    try:
        bad = runner.run(_request(gate_files["clf.keras"], ["integrity", "no-such-check"]))
        assert bad["checks"]["no-such-check"]["message"].startswith("the gate's worker failed:")
        assert (
            "ValueError: unknown check(s) ['no-such-check']"
            in bad["checks"]["integrity"]["message"]
        )
        good = runner.run(_request(gate_files["clf.h5"], ["integrity"]))
        assert good["checks"]["integrity"]["status"] == "passed"
        assert good["worker"]["pid"] == bad["worker"]["pid"] and runner.started == 1
    finally:
        runner.close()


def test_a_crash_fails_that_artifact_and_a_fresh_worker_takes_the_next(
    gate_files: dict[str, Path],
) -> None:
    _needs_segfault(gate_files)
    runner = WorkerRunner(timeout=60, memory_limit_mb=4096)
    try:
        crashed = runner.run(_request(gate_files["segv.h5"], list(CHECKS)))
        assert crashed["checks"]["integrity"] == {
            "status": "failed",
            "message": "the HDF5 library crashed while reading this file in the integrity check "
            "(signal SIGSEGV)",
            "details": {},
        }
        # the checks that do not need the crashed one ran in a fresh worker
        assert crashed["checks"]["safety"]["status"] == "failed"
        assert "[h5-object-data]" in crashed["checks"]["safety"]["message"]
        assert crashed["checks"]["finite"]["message"] == (
            "cannot be verified: the integrity check crashed the worker"
        )
        healthy = runner.run(_request(gate_files["clf.keras"], ["integrity", "finite"]))
        assert healthy["checks"]["finite"]["status"] == "passed"
        assert healthy["worker"]["pid"] == crashed["worker"]["pid"]  # the rerun's worker, reused
        assert runner.started == 2
    finally:
        runner.close()


def test_crash_and_hang_in_a_gate_run_leave_the_other_artifacts_checked(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    _needs_segfault(gate_files)
    stage(pytester.path / "models", gate_files, ["segv.h5", "hang.h5", "clf.keras"])
    result, verdicts = run_gate(pytester, "--keras-timeout", "4", "-k", "not predictions")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert message(verdicts, "segv.h5", "integrity") == (
        "the HDF5 library crashed while reading this file in the integrity check (signal SIGSEGV)"
    )
    assert message(verdicts, "hang.h5", "integrity") == (
        "timed out in the integrity check: checking this artifact took longer than 4 s "
        "(keras_timeout); the worker was stopped"
    )
    assert (
        message(verdicts, "hang.h5", "load") == "cannot be verified: the integrity check timed out"
    )
    assert status(verdicts, "clf.keras") == {
        "integrity": "passed",
        "safety": "passed",
        "load": "passed",
        "finite": "passed",
        "structure": "skipped",
    }
    result.stdout.fnmatch_lines(
        ["models/segv.h5: integrity: the HDF5 library crashed while reading this file*SIGSEGV*"]
    )


@pytest.mark.slow
def test_a_memory_bomb_config_fails_load_within_the_memory_limit(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    """A .keras whose config asks for a 200000 x 200000 kernel: 160 GB when built."""
    stage(pytester.path / "models", gate_files, ["membomb.keras"])
    _, verdicts = run_gate(pytester, "--keras-memory-limit", "3000", "-k", "load")
    text = message(verdicts, "membomb.keras", "load")
    assert "why: building the model needs more memory than the worker may use" in text
    assert "OOM when allocating tensor with shape[200000,200000]" in text


def test_the_pytest_process_imports_no_keras_nor_h5py_while_gating(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    """Reading, scanning and loading happen in the worker: the pytest process stays light."""
    stage(pytester.path / "models", gate_files, ["clf.keras", "clf.h5"])
    pytester.makeconftest(
        """
        import sys
        def pytest_sessionfinish(session):
            heavy = sorted(m for m in ("tensorflow", "keras", "h5py") if m in sys.modules)
            print("HEAVY_MODULES=" + ",".join(heavy) + ";")
        """
    )
    result = pytester.runpytest_subprocess(
        "--keras-model-dir", "models", "-s", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=8, skipped=4)
    result.stdout.fnmatch_lines(["*HEAVY_MODULES=;*"])


def test_the_worker_starts_during_collection_but_not_for_collect_only(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    stage(pytester.path / "models", gate_files, ["clf.keras"])
    pytester.makeconftest(
        """
        from pytest_kerasmodel.gate.session import gate_state
        def pytest_collection_finish(session):
            pool = gate_state(session.config).runner
            runner = pool.runners[0] if pool is not None else None
            up = runner is not None and runner.proc is not None and runner.proc.poll() is None
            print(f"WORKER_UP_AFTER_COLLECTION={up};")
        """
    )
    result = pytester.runpytest("--keras-model-dir", "models", "-s", "-k", "integrity")
    result.assert_outcomes(passed=1, deselected=5)
    result.stdout.fnmatch_lines(["*WORKER_UP_AFTER_COLLECTION=True;*"])
    listed = pytester.runpytest("--keras-model-dir", "models", "-s", "--collect-only")
    listed.stdout.fnmatch_lines(["*WORKER_UP_AFTER_COLLECTION=False;*"])
