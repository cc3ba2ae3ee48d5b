"""Gate goldens: recorded atomically with --keras-update-golden, compared on later runs."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from builders.gate_artifacts import message, run_gate, stage, status


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def test_record_then_compare_then_catch_changes(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    models = stage(pytester.path / "models", gate_files, ["clf.keras", "clf.h5", "clf.weights.h5"])
    before = _digests(models)
    result, verdicts = run_gate(pytester, "--keras-update-golden")
    result.assert_outcomes(passed=16, skipped=2)  # weights-only: load, predictions
    assert _digests(models).items() >= before.items(), "an artifact was written"
    assert sorted(p.name for p in models.iterdir()) == [
        "clf.h5",
        "clf.h5.golden.json",
        "clf.h5.golden.npz",
        "clf.keras",
        "clf.keras.golden.json",
        "clf.keras.golden.npz",
        "clf.weights.h5",
        "clf.weights.h5.golden.json",
    ]  # no temporary file left behind
    golden = json.loads((models / "clf.keras.golden.json").read_text())
    assert golden["golden_version"] == 1 and golden["kind"] == "gate-structure"
    assert golden["entries"]["clf.keras"]["weights"]["hidden/kernel"]["shape"] == [3, 4]
    with np.load(models / "clf.keras.golden.npz") as npz:
        assert npz["input/0"].shape == (4, 3) and npz["output/out"].shape == (4, 2)
    assert "generated inputs" in message(verdicts, "clf.keras", "predictions")

    result, verdicts = run_gate(pytester)
    result.assert_outcomes(passed=16, skipped=2)
    assert message(verdicts, "clf.keras", "predictions") == "1 output(s) match clf.keras.golden.npz"

    # The same architecture with other weights: the predictions change, not the structure.
    shutil.copyfile(gate_files["retrained.keras"], models / "clf.keras")
    result, verdicts = run_gate(pytester, "-k", "clf.keras and (structure or predictions)")
    assert status(verdicts, "clf.keras") == {"structure": "passed", "predictions": "failed"}
    text = message(verdicts, "clf.keras", "predictions")
    assert text.startswith("the predictions differ from the golden ")
    assert "(rtol=1e-05, atol=1e-06):\n  out: shape (4, 2) float32: " in text
    assert text.endswith("If the change is intended, re-record with --keras-update-golden.")
    result.stdout.fnmatch_lines(["*    index*expected*actual*"])

    # Another architecture: the structure golden shows a tree diff.
    shutil.copyfile(gate_files["wider.keras"], models / "clf.keras")
    result, verdicts = run_gate(pytester, "-k", "clf.keras and structure")
    text = message(verdicts, "clf.keras", "structure")
    assert "clf.keras: structure differs from its golden" in text
    assert "6 difference(s) (0 missing -, 0 unexpected +, 6 changed ~)" in text
    assert "    hidden/\n  ~   bias: shape (5,) (expected (4,))\n" in text
    assert "  ~   kernel: shape (3, 5) (expected (3, 4))" in text
    assert _digests(models)["clf.h5"] == before["clf.h5"]


def test_missing_and_outdated_goldens(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    models = stage(pytester.path / "models", gate_files, ["clf.keras"])
    result, verdicts = run_gate(pytester, "-k", "structure or predictions")
    result.assert_outcomes(skipped=2, deselected=4)
    for check in ("structure", "predictions"):
        text = message(verdicts, "clf.keras", check)
        assert text.startswith(f"no golden {check} (")
        assert "record it with: pytest --keras-model-dir DIR --keras-update-golden" in text
    (models / "clf.keras.golden.json").write_text(
        json.dumps({"golden_format": "pytest-kerasmodel", "golden_version": 0, "entries": {}})
    )
    result, verdicts = run_gate(pytester, "-k", "structure")
    assert "golden format version 0" in message(verdicts, "clf.keras", "structure")
    assert "--keras-update-golden" in message(verdicts, "clf.keras", "structure")


def test_golden_dir_and_user_inputs(pytester: pytest.Pytester, gate_files: dict[str, Path]) -> None:
    models = stage(pytester.path / "models", gate_files, [])
    stage(models / "team", gate_files, ["clf.h5"])
    np.savez(models / "team" / "clf.h5.inputs.npz", np.ones((2, 3), "float32"))
    result, verdicts = run_gate(
        pytester, "--keras-update-golden", "--keras-golden-dir", "goldens", "-k", "predictions"
    )
    result.assert_outcomes(passed=1, deselected=5)
    assert "from clf.h5.inputs.npz inputs" in message(verdicts, "clf.h5", "predictions")
    assert sorted(p.name for p in (models / "team").iterdir()) == ["clf.h5", "clf.h5.inputs.npz"]
    golden = pytester.path / "goldens" / "team" / "clf.h5.golden.npz"
    with np.load(golden) as npz:
        assert npz["input/0"].shape == (2, 3)
    result, verdicts = run_gate(pytester, "--keras-golden-dir", "goldens", "-k", "predictions")
    result.assert_outcomes(passed=1, deselected=5)
