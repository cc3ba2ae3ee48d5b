"""The pool of checking workers: every core checks, and the verdicts, ids, order and report are
those of a one-worker run, crashes and hangs included."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from builders.gate_artifacts import stage
from test_gate_isolation import _needs_segfault

from pytest_kerasmodel.gate.protocol import Request
from pytest_kerasmodel.gate.workers.pool import WorkerPool

WORKERS_SEEN = """
from pytest_kerasmodel.gate.session import gate_state

def pytest_runtest_teardown(item, nextitem):
    if nextitem is None:
        pool = gate_state(item.config).runner
        print(f"WORKERS_STARTED={pool.started};")
"""


def _run(pytester: pytest.Pytester, workers: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    report = pytester.path / f"report-{workers}.json"
    # in a subprocess: the conftest must see the gate's own state, not a re-imported copy
    result = pytester.runpytest_subprocess(
        "--keras-model-dir",
        "models",
        "--keras-workers",
        workers,
        "--keras-timeout",
        "4",
        "--keras-report",
        str(report),
        "-p",
        "no:cacheprovider",
        "-v",
        "-s",
        "-k",
        "not predictions",
    )
    data = json.loads(report.read_text())
    for artifact in data["artifacts"]:
        artifact.pop("seconds", None)  # the only field a run's timing changes
    return result, data


def _items(result: pytest.RunResult) -> list[str]:
    lines = [line.split("WORKERS_STARTED")[0] for line in result.stdout.lines if "::" in line]
    return [line.split(" [")[0].strip() for line in lines]


def test_three_workers_give_one_workers_verdicts_ids_and_report(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    _needs_segfault(gate_files)
    stage(
        pytester.path / "models",
        gate_files,
        [
            "clf.keras",
            "segv.h5",
            "hang.h5",
            "nan.keras",
            "clf.h5",
            "lambda.keras",
            "truncated.keras",
        ],
    )
    pytester.makeconftest(WORKERS_SEEN)
    one, one_report = _run(pytester, "1")
    three, three_report = _run(pytester, "3")
    assert one.ret == three.ret == pytest.ExitCode.TESTS_FAILED
    assert one.parseoutcomes() == three.parseoutcomes()
    items = [line for line in _items(three) if line.startswith("models/")]
    assert items == [line for line in _items(one) if line.startswith("models/")]
    assert one_report == three_report
    one.stdout.fnmatch_lines(["*WORKERS_STARTED=*"])
    started = {
        r: int(r.stdout.str().split("WORKERS_STARTED=")[1].split(";")[0]) for r in (one, three)
    }
    # one worker, restarted after the crash and the hang; three workers, each started at least once
    assert started[one] <= 3 and started[three] >= 3
    verdicts = {a["artifact"]: a for a in three_report["artifacts"]}
    assert verdicts["models/clf.keras"]["result"] == "passed"
    assert verdicts["models/clf.h5"]["result"] == "passed"
    assert "SIGSEGV" in verdicts["models/segv.h5"]["checks"]["integrity"]["message"]
    assert verdicts["models/hang.h5"]["checks"]["integrity"]["message"].startswith("timed out")


def _request(path: Path) -> dict[str, Any]:
    return asdict(Request(path=str(path), checks=["integrity", "safety"], memory_limit_mb=4096))


def test_a_pool_sends_ahead_only_what_memory_allows(gate_files: dict[str, Path]) -> None:
    """Two artifacts expected to need 1.5 GB each are not checked at once within 2 GB."""
    pool = WorkerPool(2, timeout=60, memory_limit_mb=4096, memory_budget_mb=2000)
    try:
        first, second = _request(gate_files["clf.keras"]), _request(gate_files["clf.h5"])
        assert pool.prefetch(first)
        assert not pool.prefetch(second)  # memory says wait
        assert pool.run(first)["checks"]["integrity"]["status"] == "passed"
        assert pool.prefetch(second)  # the first is done: now there is room
        assert pool.run(second)["checks"]["safety"]["status"] == "passed"
    finally:
        pool.close()
    roomy = WorkerPool(2, timeout=60, memory_limit_mb=4096, memory_budget_mb=8000)
    try:
        assert roomy.prefetch(first) and roomy.prefetch(second)
        answers = [roomy.run(second), roomy.run(first)]  # read in any order
        assert answers[0]["worker"]["pid"] != answers[1]["worker"]["pid"]
        assert [a["path"] for a in answers] == [second["path"], first["path"]]
    finally:
        roomy.close()


def test_keras_workers_must_be_a_positive_number(pytester: pytest.Pytester) -> None:
    (pytester.path / "models").mkdir()
    result = pytester.runpytest("--keras-model-dir", "models", "--keras-workers", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*keras_workers: expected a number of workers >= 1, got '0'*"])


POOL_SIZE = """
from pytest_kerasmodel.gate.session import gate_state

def pytest_collection_finish(session):
    print(f"POOL_SIZE={len(gate_state(session.config).get_runner().runners)};")
"""


@pytest.mark.parametrize(
    ("checks", "extra"),
    [("integrity,safety,finite,structure", 0), ("integrity,safety,load", 1)],
    ids=["file-only", "with-load"],
)
def test_the_default_pool_leaves_pytest_a_core_for_file_only_checks(
    pytester: pytest.Pytester,
    gate_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    checks: str,
    extra: int,
) -> None:
    from pytest_kerasmodel.gate.workers.pool import usable_cores

    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # not nested in xdist's worker

    names = ["clf.keras", "clf.h5", "nan.keras", "lambda.keras"]
    stage(pytester.path / "models", gate_files, names)
    pytester.makeconftest(POOL_SIZE)
    result = pytester.runpytest_subprocess(
        "--keras-model-dir", "models", "--keras-checks", checks, "--collect-only", "-q", "-s"
    )
    assert result.ret == pytest.ExitCode.OK
    # the file-only checks cost what pytest's own reporting costs: one worker a core but the
    # one pytest's process keeps busy; a check loading with Keras gets every core
    expected = min(len(names), max(1, usable_cores() - 1 + extra))
    result.stdout.fnmatch_lines([f"POOL_SIZE={expected};*"])


def test_kerasmodel_gate_keeps_every_core_for_file_only_checks(
    tmp_path: Path, gate_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without pytest's reporting (``kerasmodel gate``), no core is left to it."""
    from pytest_kerasmodel.gate.session import GateState
    from pytest_kerasmodel.gate.workers.pool import usable_cores
    from pytest_kerasmodel.options import Settings

    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    names = ["clf.keras", "clf.h5", "nan.keras", "lambda.keras"]
    stage(tmp_path / "models", gate_files, names)
    settings = Settings(checks=("integrity", "safety", "finite", "structure"))
    state = GateState(settings, root=tmp_path)
    state.selected = {tmp_path / "models" / n: (tmp_path / "models", []) for n in names}
    runner = state.get_runner()
    try:
        assert len(runner.runners) == min(len(names), usable_cores())  # type: ignore[union-attr]
    finally:
        state.close()


SPECULATION = """
import os

import pytest

from pytest_kerasmodel.gate.session import gate_state


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # a conftest deselecting items itself, which no command-line option foretells
    drop = os.environ.get("DROP_ARTIFACT")
    if drop:
        kept = [item for item in items if drop not in item.nodeid]
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    state = gate_state(session.config)
    pool = state.runner
    held = [p for p in state.sent_keys if pool is not None and pool.holds_path(str(p))]
    print(f"SENT_WHILE_COLLECTING={len(held)};")
"""


@pytest.mark.parametrize(
    ("args", "sent"),
    [
        (("--keras-checks", "integrity,safety,finite"), True),
        (("--keras-checks", "integrity,safety,finite", "-k", "not h5"), False),
        (("--keras-checks", "integrity,safety,load"), False),
    ],
    ids=["file-only", "with-k", "with-load"],
)
def test_workers_check_file_only_artifacts_while_pytest_collects(
    pytester: pytest.Pytester,
    gate_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    sent: bool,
) -> None:
    """An artifact collected goes to an idle worker at once, unless the run may deselect it
    (``-k``) or its checks load it with Keras (costly to waste); the verdicts are the same."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    stage(pytester.path / "models", gate_files, ["clf.keras", "clf.h5", "nan.keras"])
    pytester.makeconftest(SPECULATION)
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "--keras-model-dir", "models", "--keras-report", str(report), "-s", *args
    )
    held = int(result.stdout.str().split("SENT_WHILE_COLLECTING=")[1].split(";")[0])
    assert (held > 0) is sent, result.stdout.str()
    verdicts = {
        Path(a["artifact"]).name: {c: v["status"] for c, v in a["checks"].items()}
        for a in json.loads(report.read_text())["artifacts"]
    }
    assert verdicts["clf.keras"]["integrity"] == verdicts["nan.keras"]["integrity"] == "passed"
    if "load" in args[1]:
        assert verdicts["clf.keras"]["load"] == "passed"
    else:
        assert verdicts["nan.keras"]["finite"] == "failed"
    assert ("clf.h5" in verdicts) is ("-k" not in args)


def test_items_a_conftest_deselects_after_collection_are_neither_reported_nor_awaited(
    pytester: pytest.Pytester, gate_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setenv("DROP_ARTIFACT", "nan.keras")
    stage(pytester.path / "models", gate_files, ["clf.keras", "nan.keras", "clf.h5"])
    pytester.makeconftest(SPECULATION)
    result = pytester.runpytest_subprocess(
        "--keras-model-dir", "models", "--keras-checks", "integrity,finite", "-s", "-v"
    )
    # nan.keras was sent while collecting, then deselected: its failing verdict is not reported
    result.assert_outcomes(passed=4, deselected=2)
    assert "SENT_WHILE_COLLECTING=" in result.stdout.str()
    assert "nan.keras::finite" not in result.stdout.str()


def test_checking_while_collecting_gives_the_verdicts_ids_and_report_of_a_run_that_does_not(
    pytester: pytest.Pytester, gate_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash or a hang met while pytest still collects fails only its artifact, as later."""
    _needs_segfault(gate_files)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    names = ["clf.keras", "segv.h5", "hang.h5", "nan.keras", "clf.h5", "lambda.keras"]
    stage(pytester.path / "models", gate_files, names)
    pytester.makeconftest(SPECULATION)
    runs = {}
    # "-k" with an expression every item matches: nothing is sent while collecting
    for name, extra in (("ahead", ()), ("not-ahead", ("-k", "not no_such_item"))):
        report = pytester.path / f"report-{name}.json"
        result = pytester.runpytest_subprocess(
            "--keras-model-dir", "models", "--keras-checks", "integrity,safety,finite",
            "--keras-timeout", "4", "--keras-report", str(report), "-v", "-s",
            "-p", "no:cacheprovider", *extra,
        )  # fmt: skip
        data = json.loads(report.read_text())
        for artifact in data["artifacts"]:
            artifact.pop("seconds", None)  # the only field a run's timing changes
        held = int(result.stdout.str().split("SENT_WHILE_COLLECTING=")[1].split(";")[0])
        runs[name] = (result, data, held)
    (ahead, ahead_report, sent), (plain, plain_report, not_sent) = runs["ahead"], runs["not-ahead"]
    assert sent > 0 and not_sent == 0
    assert ahead.parseoutcomes() == plain.parseoutcomes()
    assert [i for i in _items(ahead) if i.startswith("models/")] == [
        i for i in _items(plain) if i.startswith("models/")
    ]
    assert ahead_report == plain_report
    verdicts = {a["artifact"]: a for a in ahead_report["artifacts"]}
    assert "SIGSEGV" in verdicts["models/segv.h5"]["checks"]["integrity"]["message"]
    assert verdicts["models/hang.h5"]["checks"]["integrity"]["message"].startswith("timed out")
    assert verdicts["models/clf.keras"]["result"] == "passed"
