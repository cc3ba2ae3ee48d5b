"""The keras_artifact fixture, and the shipped examples/models passing the gate."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from builders.gate_artifacts import MARKER_NAME, run_gate, stage

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "models"


def test_keras_artifact_runs_once_per_artifact(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    stage(pytester.path / "models", gate_files, ["clf.keras", "clf.weights.h5", "lambda.keras"])
    pytester.makepyfile(
        test_team="""
        import pytest
        from pytest_kerasmodel import UnsafeArtifactError

        def test_per_artifact(keras_artifact):
            print("ARTIFACT", keras_artifact.id, keras_artifact.format)
            if keras_artifact.format in ("h5-weights", "weights.h5"):
                pytest.skip("weights only")
            if "lambda" in keras_artifact.id:
                with pytest.raises(UnsafeArtifactError, match="lambda"):
                    keras_artifact.model
                return
            weights = keras_artifact.description["weights"]
            assert weights["hidden/kernel"]["shape"] == [3, 4]
            assert keras_artifact.model.count_params() == 26
        """
    )
    result = pytester.runpytest(
        "test_team.py", "--keras-model-dir", "models", "-k", "per_artifact", "-v"
    )
    result.assert_outcomes(passed=2, skipped=1, deselected=18)
    result.stdout.fnmatch_lines(
        [
            "*test_per_artifact?models/clf.keras? PASSED*",
            "*test_per_artifact?models/clf.weights.h5? SKIPPED*",
            "*test_per_artifact?models/lambda.keras? PASSED*",
        ]
    )
    assert not (gate_files["lambda.keras"].parent / MARKER_NAME).exists()


def test_keras_artifact_without_model_dir_skips_saying_why(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(keras_artifact):\n    raise AssertionError\n")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no artifacts: give --keras-model-dir DIR*"])


def test_the_shipped_examples_pass_the_gate(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLES, pytester.path / "models")
    result, verdicts = run_gate(pytester)
    result.assert_outcomes(passed=17, skipped=2)
    assert verdicts["iris_classifier.keras"]["checks"]["budgets"]["status"] == "passed"
    for name in ("iris_classifier.keras", "iris_classifier.h5"):
        checks = verdicts[name]["checks"]
        assert checks["structure"]["status"] == checks["predictions"]["status"] == "passed"
