"""The pool's workers forked from one zygote that imported Keras: each still an isolated worker
(own pipes, stderr file, memory limit, exit status), a crash or hang costs a fork, and
``--keras-no-fork`` spawns them as before."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from builders.gate_artifacts import stage
from test_gate_isolation import _needs_segfault

from pytest_kerasmodel.frameworks import LOADER_ENV, TF_KERAS
from pytest_kerasmodel.gate.protocol import Request
from pytest_kerasmodel.gate.workers import forkserver
from pytest_kerasmodel.gate.workers.pool import WorkerPool
from pytest_kerasmodel.options import get_settings

pytestmark = pytest.mark.skipif(not forkserver.available(), reason="no fork server here")

FILES_ONLY = ["integrity", "safety", "finite"]


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def _request(path: Path, checks: list[str], **fields: Any) -> dict[str, Any]:
    return asdict(Request(path=str(path), checks=checks, memory_limit_mb=3000, **fields))


def _pool(checks: list[str] | None) -> WorkerPool:
    return WorkerPool(1, timeout=60, memory_limit_mb=4096, memory_budget_mb=None, checks=checks)


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    """Two forked workers, the zygote importing Keras (a load check is among the checks)."""
    pool = WorkerPool(
        2, timeout=60, memory_limit_mb=4096, memory_budget_mb=None, checks=["integrity", "load"]
    )
    assert pool.forkserver is not None and pool.forkserver.proc is not None
    yield pool
    pool.close()
    assert pool.forkserver is None


def test_the_pools_workers_are_forked_from_a_zygote_that_imported_keras(
    pool: WorkerPool, gate_files: dict[str, Path]
) -> None:
    assert pool.forkserver is not None and pool.forkserver.proc is not None
    zygote = pool.forkserver.proc.pid
    first, second = (
        _request(gate_files["clf.keras"], FILES_ONLY),
        _request(gate_files["clf.h5"], FILES_ONLY),
    )
    assert pool.prefetch(first) and pool.prefetch(second)  # both workers busy at once
    answers = [pool.run(first), pool.run(second)]
    pids = {a["worker"]["pid"] for a in answers}
    assert len(pids) == 2 and os.getpid() not in pids
    assert {_parent_of(pid) for pid in pids} == {zygote}  # forked by the zygote, not spawned
    # Keras is in every worker before any check asked for it: no import at their first load
    assert [a["worker"]["keras"] for a in answers] == [True, True]
    for answer in answers:
        assert {c: r["status"] for c, r in answer["checks"].items()} == dict.fromkeys(
            FILES_ONLY, "passed"
        )
        assert answer["worker"]["memory_limit_mb"] == 3000  # RLIMIT_DATA, set in the child
    # each its own stderr file: the runner's temporary file, not the zygote's nor the other's
    for runner in pool.runners:
        assert runner.stderr is not None and isinstance(runner.proc, forkserver.ForkedWorker)
        pid = runner.proc.pid
        assert os.stat(f"/proc/{pid}/fd/2").st_ino == os.fstat(runner.stderr.fileno()).st_ino
    assert pool.started == 2


def test_forked_workers_load_compile_and_predict_under_the_default_backend(
    pool: WorkerPool, tmp_path: Path
) -> None:
    """Forking after ``import keras`` (TensorFlow): the worker's first TensorFlow ops, training
    step included, run in the child."""
    from builders import roundtrip_models as rm

    trained = tmp_path / "trained.keras"
    rm.trained_dense().save(trained)  # compiled with Adam and trained: compile has work to do
    golden = tmp_path / "trained.keras.predictions.npz"
    checks = ["integrity", "safety", "load", "compile", "predictions"]
    recorded = pool.run(
        _request(trained, checks, golden_predictions=str(golden), update_golden=True)
    )
    assert golden.is_file(), recorded
    compared = pool.run(_request(trained, checks, golden_predictions=str(golden)))
    statuses = {c: r["status"] for c, r in compared["checks"].items()}
    assert statuses == dict.fromkeys(checks, "passed"), compared["checks"]
    assert compared["checks"]["predictions"]["message"] == (
        "1 output(s) match trained.keras.predictions.npz"
    )


def test_a_crash_fails_its_artifact_with_the_signal_and_a_fresh_fork_takes_the_next(
    pool: WorkerPool, gate_files: dict[str, Path]
) -> None:
    _needs_segfault(gate_files)
    assert pool.forkserver is not None and pool.forkserver.proc is not None
    started = pool.started
    start = time.monotonic()
    crashed = pool.run(_request(gate_files["segv.h5"], ["integrity", "safety"]))
    assert crashed["checks"]["integrity"]["message"] == (
        "the HDF5 library crashed while reading this file in the integrity check (signal SIGSEGV)"
    )
    assert "[h5-object-data]" in crashed["checks"]["safety"]["message"]  # rerun in a fresh fork
    healthy = pool.run(_request(gate_files["clf.keras"], ["integrity", "load"]))
    assert healthy["checks"]["load"]["status"] == "passed"
    assert _parent_of(healthy["worker"]["pid"]) == pool.forkserver.proc.pid
    assert pool.started >= started + 1
    # a restart is a fork, not a Python start and a Keras import (about 4 s of CPU here)
    assert time.monotonic() - start < 30


def test_a_worker_killed_by_sigkill_is_said_to_be_killed_most_likely_for_memory(
    pool: WorkerPool, gate_files: dict[str, Path]
) -> None:
    """The zygote reaps its children: the pytest process still learns the signal."""
    hang = _request(gate_files["hang.h5"], ["integrity"])
    assert pool.prefetch(hang)
    runner = next(r for r in pool.runners if r.queued)
    assert isinstance(runner.proc, forkserver.ForkedWorker) and pool.forkserver is not None
    pid = pool.forkserver.pid_of(runner.proc.request, 30.0)
    assert pid is not None
    time.sleep(0.3)  # let it start reading the file
    os.kill(pid, signal.SIGKILL)
    answer = pool.run(hang)
    assert answer["checks"]["integrity"]["message"].startswith(
        "the worker was killed (SIGKILL) while reading this file in the integrity check, most "
        "likely for memory (the worker's limit for this artifact is 3000 MB"
    ), answer


def test_a_hang_times_out_and_the_next_artifact_is_checked(
    pool: WorkerPool, gate_files: dict[str, Path]
) -> None:
    for runner in pool.runners:
        runner.timeout = 2
    try:
        hung = pool.run(_request(gate_files["hang.h5"], ["integrity", "finite"]))
        checked = pool.run(_request(gate_files["clf.h5"], FILES_ONLY))
    finally:
        for runner in pool.runners:
            runner.timeout = 60
    assert hung["checks"]["integrity"]["message"] == (
        "timed out in the integrity check: checking this artifact took longer than 2 s "
        "(keras_timeout); the worker was stopped"
    )
    assert hung["checks"]["finite"]["message"] == (
        "cannot be verified: the integrity check timed out"
    )
    assert {c: r["status"] for c, r in checked["checks"].items()} == dict.fromkeys(
        FILES_ONLY, "passed"
    )


def test_a_zygote_that_ends_before_forking_leaves_the_request_to_a_spawned_worker(
    gate_files: dict[str, Path],
) -> None:
    pool = _pool(["load"])
    try:
        assert pool.forkserver is not None and pool.forkserver.proc is not None
        pool.runners[0].start()  # the fork request waits while the zygote imports Keras
        pool.forkserver.proc.kill()  # ... and the zygote never gets to it
        answer = pool.run(_request(gate_files["clf.keras"], FILES_ONLY))
        assert {c: r["status"] for c, r in answer["checks"].items()} == dict.fromkeys(
            FILES_ONLY, "passed"
        )
        assert _parent_of(answer["worker"]["pid"]) == os.getpid()  # spawned, as without fork
        assert pool.runners[0].forkserver is None and pool.started == 1
    finally:
        pool.close()


CONFTEST = """
import os
from pytest_kerasmodel.gate.session import gate_state

def _parent_of(pid):
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])

def pytest_runtest_teardown(item, nextitem):
    if nextitem is None:
        pool = gate_state(item.config).runner
        zygote = pool.forkserver.proc.pid if pool.forkserver is not None else None
        parents = {_parent_of(r.proc.pid) for r in pool.runners if r.proc is not None}
        parent = ("zygote" if parents == {zygote} else "pytest" if parents == {os.getpid()}
                  else parents)
        print(f"WORKERS_PARENT={parent};")
"""


@pytest.mark.parametrize(("args", "parent"), [((), "zygote"), (("--keras-no-fork",), "pytest")])
def test_keras_no_fork_spawns_the_workers_as_before(
    pytester: pytest.Pytester, gate_files: dict[str, Path], args: tuple[str, ...], parent: str
) -> None:
    stage(pytester.path / "models", gate_files, ["clf.keras", "clf.h5"])
    pytester.makeconftest(CONFTEST)
    # in a subprocess: the conftest must see the gate's own state, not a re-imported copy
    result = pytester.runpytest_subprocess(
        "--keras-model-dir", "models", "-k", "integrity", "-p", "no:cacheprovider", "-s", *args
    )
    result.assert_outcomes(passed=2, deselected=10)
    result.stdout.fnmatch_lines([f"*WORKERS_PARENT={parent};*"])


def test_keras_fork_workers_is_the_ini_key_of_keras_no_fork(pytester: pytest.Pytester) -> None:
    assert get_settings(pytester.parseconfig()).fork_workers
    assert not get_settings(pytester.parseconfig("--keras-no-fork")).fork_workers
    pytester.makeini("[pytest]\nkeras_fork_workers = false\n")
    assert not get_settings(pytester.parseconfig()).fork_workers


@pytest.mark.parametrize(
    ("env", "forked"),
    [
        ({"KERAS_BACKEND": "tensorflow"}, True),
        ({"KERAS_BACKEND": "torch"}, True),
        ({"KERAS_BACKEND": "jax"}, False),  # a thread of JAX's runs at the fork
        ({LOADER_ENV: TF_KERAS}, False),
    ],
)
def test_the_pool_forks_only_where_importing_keras_starts_no_thread(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], forked: bool
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    pool = _pool([])
    try:
        assert (pool.forkserver is not None) is forked
        assert pool.runners[0].forkserver is pool.forkserver
    finally:
        pool.close()


def _zygote(pool: WorkerPool) -> int:
    assert pool.forkserver is not None and pool.forkserver.proc is not None
    return pool.forkserver.proc.pid


def _checked(pool: WorkerPool, path: Path, checks: list[str]) -> dict[str, Any]:
    answer = pool.run(_request(path, checks))
    statuses = {c: r["status"] for c, r in answer["checks"].items()}
    assert set(checks) <= set(statuses) and set(statuses.values()) == {"passed"}, statuses
    return dict(answer["worker"])


def test_a_closed_pools_zygote_forks_the_next_pool_of_the_process_that_needs_the_same(
    gate_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept for the next pool whose workers would be the same (pytest's per-test variables
    aside): a load check's pool, also one that decides only at its first request; never a
    file-only pool, whose workers must not hold Keras."""
    clf = gate_files["clf.keras"]
    first = _pool(["integrity", "load"])
    zygote = _zygote(first)
    _checked(first, clf, ["integrity", "load"])
    first.close()
    assert zygote in [k.proc.pid for k in forkserver._KEPT if k.proc is not None]
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "another test (call)")
    second = _pool(["integrity", "load"])
    try:
        assert _zygote(second) == zygote
        worker = _checked(second, clf, ["integrity", "load"])
        assert _parent_of(worker["pid"]) == zygote and worker["keras"] is True
    finally:
        second.close()
    files = _pool(None)  # collecting: the checks are not known yet
    try:
        assert _zygote(files) != zygote  # a zygote that never imported Keras
        worker = _checked(files, clf, FILES_ONLY)
        assert worker["keras"] is False and _parent_of(worker["pid"]) == _zygote(files)
    finally:
        files.close()
    undecided = _pool(None)
    try:
        worker = _checked(undecided, clf, ["integrity", "load"])  # its first request decides
        assert _zygote(undecided) == zygote and _parent_of(worker["pid"]) == zygote
    finally:
        undecided.close()


def test_a_kept_zygote_that_ended_or_forks_other_workers_is_not_used(
    gate_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    clf = gate_files["clf.h5"]
    first = _pool(FILES_ONLY)
    ended = _zygote(first)
    first.close()
    (kept,) = [k for k in forkserver._KEPT if k.proc is not None and k.proc.pid == ended]
    assert kept.proc is not None
    kept.proc.kill()  # it ends while kept
    kept.proc.wait()
    second = _pool(FILES_ONLY)
    try:
        alive = _zygote(second)
        assert alive != ended
        _checked(second, clf, FILES_ONLY)
    finally:
        second.close()
    monkeypatch.setenv("KERAS_GATE_TEST_OTHER", "1")  # another environment: its own zygote
    other = _pool(FILES_ONLY)
    try:
        assert _zygote(other) != alive
        _checked(other, clf, FILES_ONLY)
    finally:
        other.close()
    forkserver.close_kept()  # what a process's exit does
    assert forkserver._KEPT == []
    with pytest.raises(ProcessLookupError):
        os.kill(alive, 0)


def test_a_pool_closed_before_its_first_request_waits_for_no_fork_and_keeps_its_zygote() -> None:
    """A session that ran no check (an empty folder, everything deselected): the fork request
    held until the first request decides is never sent, so closing waits for no reply (it waited
    5 s for the fork and 5 s more to kill it) and the zygote, which forked nothing, is kept."""
    pool = _pool(None)  # collecting: the checks are not known yet
    zygote = _zygote(pool)
    runner = pool.runners[0]
    runner.start()  # its fork request is held
    proc = runner.proc
    assert isinstance(proc, forkserver.ForkedWorker) and proc.pid is None
    start = time.monotonic()
    pool.close()
    assert time.monotonic() - start < 4  # a hang guard: closing takes milliseconds
    assert proc.never_forked()
    assert zygote in [k.proc.pid for k in forkserver._KEPT if k.proc is not None]
