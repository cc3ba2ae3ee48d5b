"""--keras-model-dir collection: one item per artifact and check, sorted, and only where asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders.gate_artifacts import stage

CHECKS = ["integrity", "safety", "load", "finite", "structure", "predictions"]  # no budget set


def _ids(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if "::" in line and " " not in line]


def test_every_artifact_and_check_is_an_item_in_sorted_order(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    models = stage(pytester.path / "models", gate_files, ["clf.keras", "clf.weights.h5"])
    stage(models / "sub", gate_files, ["clf.h5"])
    (models / "notes.txt").write_text("not an artifact")
    (models / "clf.keras.golden.json").write_text("{}")  # goldens are not artifacts
    (models / "clf.weights.h5.budget.json").write_text('{"max_params": 100}')  # nor sidecars
    result = pytester.runpytest("--keras-model-dir", "models", "--collect-only", "-q")
    assert _ids(result) == [  # a budgets item only where a budget is set
        *(f"models/clf.keras::{c}" for c in CHECKS),
        *(f"models/clf.weights.h5::{c}" for c in [*CHECKS, "budgets"]),
        *(f"models/sub/clf.h5::{c}" for c in CHECKS),
    ]
    everywhere = pytester.runpytest(
        "--keras-model-dir", "models", "--keras-max-file-size", "1MB", "--collect-only", "-q"
    )
    assert [i for i in _ids(everywhere) if i.endswith("::budgets")] == [
        "models/clf.keras::budgets",
        "models/clf.weights.h5::budgets",
        "models/sub/clf.h5::budgets",
    ]


def test_model_dir_alone_ignores_testpaths(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    """`pytest --keras-model-dir DIR` from a project whose ini sets testpaths gates DIR only."""
    stage(pytester.path / "models", gate_files, ["clf.keras"])
    pytester.makeini("[pytest]\ntestpaths = tests\n")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_unit.py").write_text("def test_unit():\n    pass\n")
    only_models = pytester.runpytest("--keras-model-dir", "models", "--collect-only", "-q")
    assert _ids(only_models) == [f"models/clf.keras::{c}" for c in CHECKS]
    both = pytester.runpytest("tests", "--keras-model-dir", "models", "--collect-only", "-q")
    assert _ids(both) == ["tests/test_unit.py::test_unit", *_ids(only_models)]
    plain = pytester.runpytest("--collect-only", "-q")
    assert _ids(plain) == ["tests/test_unit.py::test_unit"]


def test_ini_model_dir_adds_artifacts_to_the_test_suite(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    stage(pytester.path / "models", gate_files, ["clf.h5"])
    pytester.makeini("[pytest]\ntestpaths = tests\nkeras_model_dir = models\n")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_unit.py").write_text("def test_unit():\n    pass\n")
    result = pytester.runpytest("--collect-only", "-q")
    assert _ids(result) == [
        "tests/test_unit.py::test_unit",
        *(f"models/clf.h5::{c}" for c in CHECKS),
    ]


def test_artifacts_outside_the_model_dirs_are_not_collected(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    stage(pytester.path / "models", gate_files, ["clf.keras"])
    stage(pytester.path / "tests" / "data", gate_files, ["clf.h5"])
    (pytester.path / "tests" / "test_unit.py").write_text("def test_unit():\n    pass\n")
    result = pytester.runpytest("tests", "--keras-model-dir", "models", "--collect-only", "-q")
    ids = _ids(result)
    assert "tests/test_unit.py::test_unit" in ids
    assert not [i for i in ids if i.startswith("tests/data")]
    without = pytester.runpytest("tests", "--collect-only", "-q")
    assert _ids(without) == ["tests/test_unit.py::test_unit"]


def test_a_savedmodel_folder_is_one_artifact(pytester: pytest.Pytester) -> None:
    saved = pytester.path / "models" / "exported"
    saved.mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"\x08\x01")
    (saved / "variables").mkdir()
    (saved / "variables" / "inner.h5").write_bytes(b"")  # not entered: part of the SavedModel
    result = pytester.runpytest("--keras-model-dir", "models", "--collect-only", "-q")
    assert _ids(result) == [f"models/exported::{c}" for c in CHECKS]


def test_a_node_id_inside_the_model_dir_selects_just_that(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    stage(pytester.path / "models", gate_files, ["clf.keras", "clf.h5"])
    args = ("models/clf.h5::finite", "--keras-model-dir", "models", "--collect-only", "-q")
    assert _ids(pytester.runpytest(*args)) == ["models/clf.h5::finite"]


def test_keyword_selects_one_check(pytester: pytest.Pytester, gate_files: dict[str, Path]) -> None:
    stage(pytester.path / "models", gate_files, ["clf.keras", "clf.h5"])
    result = pytester.runpytest("--keras-model-dir", "models", "-k", "finite", "-q")
    result.assert_outcomes(passed=2, deselected=10)


def test_missing_model_dir_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--keras-model-dir", "nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--keras-model-dir: no such folder:*nowhere*"])


def test_keras_checks_collects_just_the_named_checks(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    """--keras-checks (ini keras_checks) collects only the checks it names, in the gate's order:
    unlike -k, it cannot drop an artifact whose path happens to hold a check's name."""
    stage(pytester.path / "models" / "loaded", gate_files, ["clf.keras"])
    args = ["--keras-model-dir", "models", "--collect-only", "-q"]
    named = pytester.runpytest(*args, "--keras-checks", "finite,integrity")
    assert _ids(named) == ["models/loaded/clf.keras::integrity", "models/loaded/clf.keras::finite"]
    by_k = pytester.runpytest(*args, "-k", "not load")  # the path holds "load": all dropped
    assert _ids(by_k) == []
    pytester.makeini("[pytest]\nkeras_checks = safety load\n")
    assert _ids(pytester.runpytest(*args)) == [
        "models/loaded/clf.keras::safety",
        "models/loaded/clf.keras::load",
    ]
    compiled = pytester.runpytest(*args, "--keras-load-compile")  # adds compile to the list
    assert _ids(compiled)[-1] == "models/loaded/clf.keras::compile"
    with_backend = pytester.runpytest(*args, "--keras-backends", "jax")  # load[jax], no predictions
    assert _ids(with_backend)[-1] == "models/loaded/clf.keras::load[jax]"
    assert not [i for i in _ids(with_backend) if "predictions" in i]


def test_a_check_named_alone_still_runs_after_the_safety_scan(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    """`--keras-checks load` has no safety item, yet a Lambda artifact is never deserialised."""
    stage(pytester.path / "models", gate_files, ["lambda.keras", "clf.keras"])
    result = pytester.runpytest("--keras-model-dir", "models", "--keras-checks", "load", "-q")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*lambda.keras: load: refused: the safety scan has 1 finding(s) ([[]lambda] "
            "config.json), so the model is never deserialised, safe_mode or not; the safety "
            "check is not collected (--keras-checks), it says:",
            "  - [[]lambda] config.json: layer 'lam/touch'*",
        ]
    )


def test_an_unknown_check_is_a_usage_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "models").mkdir()
    result = pytester.runpytest("--keras-model-dir", "models", "--keras-checks", "integrity,lod")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*keras_checks: unknown check(s) [[]'lod']; known: integrity*"])


def test_what_collection_made_is_frozen_while_the_gate_runs_and_thawed_after(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    """The cyclic collector skips the collection tree while gate items run (gc.freeze), the
    process is as it was once the session ends, and a session without gate items freezes
    nothing."""
    import gc

    stage(pytester.path / "models", gate_files, ["clf.keras"])
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_unit.py").write_text("def test_unit():\n    pass\n")
    pytester.makeconftest(
        """
        import gc

        def pytest_runtest_call(item):
            with open("frozen.txt", "a") as f:
                f.write(f"{item.name} {gc.get_freeze_count()}\\n")
        """
    )
    assert gc.get_freeze_count() == 0
    result = pytester.runpytest(
        "tests", "--keras-model-dir", "models", "--keras-checks", "integrity", "-p", "no:xdist"
    )
    result.assert_outcomes(passed=2)
    counts = dict(line.split() for line in (pytester.path / "frozen.txt").read_text().splitlines())
    assert counts.keys() == {"test_unit", "integrity"}
    assert all(int(n) > 0 for n in counts.values()), counts
    assert gc.get_freeze_count() == 0

    (pytester.path / "frozen.txt").unlink()
    pytester.runpytest("tests", "-p", "no:xdist").assert_outcomes(passed=1)
    assert (pytester.path / "frozen.txt").read_text() == "test_unit 0\n"
