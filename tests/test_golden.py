"""Golden files: versioned JSON, atomic writes, and the keras_golden_structure lifecycle."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from pytest_kerasmodel.errors import GoldenError
from pytest_kerasmodel.golden import (
    GOLDEN_VERSION,
    golden_document,
    load_golden_file,
    update_golden_entry,
    write_json_atomic,
)

TEST_FILE = """
ARTIFACT = {artifact!r}

def test_model(keras_golden_structure):
    keras_golden_structure(ARTIFACT)
"""


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # hypothesis's plugin re-imports hypothesis in every in-process run (~2 s): not needed here
    return pytester.runpytest("-p", "no:hypothesispytest", *args)


def _widen(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        del f["layers/dense_1/vars/0"]
        f["layers/dense_1/vars/0"] = np.zeros((6, 3), "float32")


def test_golden_lifecycle(pytester: pytest.Pytester, keras3_files: dict[str, Path]) -> None:
    artifact = pytester.path / "model.weights.h5"
    shutil.copy(keras3_files["weights.h5"], artifact)
    pytester.makepyfile(test_lifecycle=TEST_FILE.format(artifact=str(artifact)))
    golden = pytester.path / "test_lifecycle.keras-golden.json"

    # 1. missing: fails, saying how to record
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*no golden recorded for 'test_model' in *test_lifecycle.keras-golden.json",
            "*record it with: pytest --keras-update-golden*",
        ]
    )
    assert not golden.exists()

    # 2. recorded, never silently
    result = _run(pytester, "--keras-update-golden")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*keras goldens written: 1*",
            "recorded *test_lifecycle.keras-golden.json [[]test_model[]]",
        ]
    )
    document = json.loads(golden.read_text())
    assert document["golden_version"] == GOLDEN_VERSION
    assert document["entries"]["test_model"]["weights"]["out/kernel"]["shape"] == [6, 2]

    # 3. passes, writes nothing
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    assert "keras goldens written" not in result.stdout.str()

    # 4. the artifact changed: fails with a tree diff naming the change
    _widen(artifact)
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*model.weights.h5: structure differs from its golden: 2 difference(s)*",
            "*Keras level (layer/variable):",
            "*    out/",
            "*  ~   kernel: shape (6, 3) (expected (6, 2))",
            "*HDF5 level (path):",
            "*  ~       0: shape (6, 3) (expected (6, 2))",
            "*if the change is intended, update it with: pytest --keras-update-golden*",
        ]
    )

    # 5. update, 6. passes again
    result = _run(pytester, "--keras-update-golden")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["updated *test_lifecycle.keras-golden.json [[]test_model[]]"])
    _run(pytester).assert_outcomes(passed=1)
    # nothing but the golden itself is left beside the test module (no temp or lock files)
    assert sorted(p.name for p in pytester.path.iterdir() if "golden" in p.name) == [
        "test_lifecycle.keras-golden.json",
    ]


def test_goldens_are_keyed_by_node_id_and_name(
    pytester: pytest.Pytester, keras3_files: dict[str, Path]
) -> None:
    pytester.makepyfile(
        test_keys=f"""
        import pytest
        FILES = {{"keras": {str(keras3_files["keras"])!r}, "h5": {str(keras3_files["h5"])!r}}}

        @pytest.mark.parametrize("fmt", ["keras", "h5"])
        def test_each(keras_golden_structure, fmt):
            keras_golden_structure(FILES[fmt])

        def test_two(keras_golden_structure):
            keras_golden_structure(FILES["keras"], name="zip")
            keras_golden_structure(FILES["h5"], name="legacy")
            keras_golden_structure(FILES["h5"], name="legacy")
        """
    )
    _run(pytester, "--keras-update-golden", "-n", "2").assert_outcomes(passed=3)
    entries = json.loads((pytester.path / "test_keys.keras-golden.json").read_text())["entries"]
    assert sorted(entries) == [
        "test_each[h5]",
        "test_each[keras]",
        "test_two::legacy",
        "test_two::legacy#2",
        "test_two::zip",
    ]
    assert entries["test_each[keras]"]["format"] == "keras"
    _run(pytester, "-n", "2").assert_outcomes(passed=3)


def test_outdated_golden_says_regenerate(
    pytester: pytest.Pytester, keras3_files: dict[str, Path]
) -> None:
    pytester.makepyfile(test_old=TEST_FILE.format(artifact=str(keras3_files["keras"])))
    old = {"golden_format": "pytest-kerasmodel", "golden_version": 0, "kind": "structure"}
    (pytester.path / "test_old.keras-golden.json").write_text(json.dumps(old))
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*golden format version 0, this plugin reads 1; regenerate with --keras-update-golden*"]
    )
    _run(pytester, "--keras-update-golden").assert_outcomes(passed=1)
    _run(pytester).assert_outcomes(passed=1)


def test_write_json_atomic_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "golden.json"
    write_json_atomic(target, {"a": (1, 2), "nan": float("nan")})
    assert json.loads(target.read_text()) == {"a": [1, 2], "nan": "nan"}
    write_json_atomic(target, {"b": 1})
    assert json.loads(target.read_text()) == {"b": 1}
    assert [p.name for p in target.parent.iterdir()] == ["golden.json"]


def test_interrupted_write_leaves_the_previous_golden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "golden.json"
    write_json_atomic(target, {"version": "old"})

    def crash(src: str, dst: str) -> None:
        raise KeyboardInterrupt  # the process is interrupted between write and rename

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_json_atomic(target, {"version": "new"})
    assert json.loads(target.read_text()) == {"version": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["golden.json"]


def test_update_golden_entry_reports_what_it_did(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    assert update_golden_entry(path, "structure", "t", {"x": 1}) == "recorded"
    assert update_golden_entry(path, "structure", "t", {"x": 1}) is None
    assert update_golden_entry(path, "structure", "t", {"x": 2}) == "updated"
    assert load_golden_file(path, kind="structure") == {"t": {"x": 2}}


def test_load_golden_file_checks_format_and_kind(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    write_json_atomic(path, golden_document("predictions", {"t": 1}))
    with pytest.raises(GoldenError, match="holds 'predictions' goldens, not 'structure'"):
        load_golden_file(path, kind="structure")
    path.write_text("{broken")
    with pytest.raises(GoldenError, match="not a readable JSON file"):
        load_golden_file(path)
    path.write_text('{"something": "else"}')
    with pytest.raises(GoldenError, match="not a pytest-kerasmodel golden file"):
        load_golden_file(path)
