"""Each gate check passing and failing on real files, with the reason a maintainer expects."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from gate_artifacts import MARKER_NAME, message, run_gate, stage, status

from pytest_kerasmodel.gate.report import FULL_TABLE_ROWS

ALL_OK = {"integrity": "passed", "safety": "passed", "load": "passed", "finite": "passed"}
NO_GOLDEN = {"structure": "skipped", "predictions": "skipped"}  # and no budgets item


@pytest.mark.parametrize("workers", ["0", "2"])
def test_healthy_artifacts_pass_and_the_summary_is_complete(
    pytester: pytest.Pytester,
    gate_files: dict[str, Path],
    workers: str,
) -> None:
    names = ["clf.keras", "clf.h5", "clf.weights.h5", "keras2.h5"]
    stage(pytester.path / "models", gate_files, names)
    result, verdicts = run_gate(pytester, "-n", workers)
    result.assert_outcomes(passed=15, skipped=9)
    for name in ("clf.keras", "clf.h5", "keras2.h5"):
        assert status(verdicts, name) == {**ALL_OK, **NO_GOLDEN}, name
    assert status(verdicts, "clf.weights.h5") == {
        **ALL_OK,
        "load": "skipped",
        **NO_GOLDEN,
    }
    assert "not applicable: a weights-only file" in message(verdicts, "clf.weights.h5", "load")
    assert "no golden structure" in message(verdicts, "clf.keras", "structure")
    assert "--keras-update-golden" in message(verdicts, "clf.keras", "predictions")
    assert verdicts["keras2.h5"]["writer"].startswith("2.")
    assert verdicts["clf.keras"]["params"] == 26
    result.stdout.fnmatch_lines(
        [
            "*= keras artifacts =*",
            "artifact*format*writer*params*size*integrity*safety*load*finite*structure*predictions",
            "models/clf.h5 *h5 *3.* 26 *KB *ok *ok *ok *ok *skip *skip",
            "models/clf.keras *keras *3.* 26 *KB *ok *ok *ok *ok *skip *skip",
            "models/clf.weights.h5 *weights.h5 *? *26 *KB *ok *ok *skip *ok *skip *skip",
            "models/keras2.h5 *h5 *2.* *ok *ok *ok *ok *skip *skip",
            "4 artifact(s), 0 failing at least one check",
        ]
    )


def test_damaged_files_fail_integrity_naming_the_problem(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    names = ["truncated.keras", "truncated.h5", "empty.h5", "garbage.keras", "crc.keras"]
    stage(pytester.path / "models", gate_files, names)
    result, verdicts = run_gate(pytester, "-k", "integrity or load")
    result.assert_outcomes(failed=10, deselected=20)
    expected = {
        "truncated.keras": "not a readable zip archive",
        "truncated.h5": "truncated file",
        "empty.h5": "the file is empty",
        "garbage.keras": "neither HDF5 nor zip: the file starts with b'this is '",
        "crc.keras": "member 'model.weights.h5' fails its CRC check",
    }
    for name, reason in expected.items():
        assert reason in message(verdicts, name, "integrity"), name
        assert message(verdicts, name, "load") == "not checked: the integrity check failed"
    result.stdout.fnmatch_lines(
        ["models/crc.keras: integrity: a damaged zip archive: member 'model.weights.h5' fails*"]
    )


def test_nan_and_inf_weights_fail_finite_naming_each_variable(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    stage(pytester.path / "models", gate_files, ["nan.keras", "inf.h5", "clf.keras"])
    result, verdicts = run_gate(pytester, "-k", "finite")
    result.assert_outcomes(passed=1, failed=2, deselected=15)
    assert message(verdicts, "nan.keras", "finite") == (
        "1 of 4 weight variable(s) hold NaN or Inf:\n  - hidden/kernel: 1 NaN, 2 Inf of 12 values"
    )
    assert message(verdicts, "inf.h5", "finite") == (
        "1 of 4 weight variable(s) hold NaN or Inf:\n  - out/bias: 2 Inf of 2 values"
    )
    assert "load" not in verdicts["nan.keras"]["checks"]  # file-only: Keras is not even asked


@pytest.mark.parametrize("isolation", [[], ["--keras-no-isolation"]], ids=["worker", "in-process"])
def test_a_lambda_layer_is_never_executed(
    pytester: pytest.Pytester, gate_files: dict[str, Path], isolation: list[str]
) -> None:
    stage(pytester.path / "models", gate_files, ["lambda.keras", "lambda.h5"])
    marker = gate_files["lambda.keras"].parent / MARKER_NAME  # the path baked into its code
    assert not marker.exists()
    result, verdicts = run_gate(pytester, *isolation)
    for name in ("lambda.keras", "lambda.h5"):
        assert status(verdicts, name)["safety"] == "failed"
        assert "[lambda-bytecode]" in message(verdicts, name, "safety")
        assert "layer 'lam/touch' > function: serialised Python lambda" in message(
            verdicts, name, "safety"
        )
        assert message(verdicts, name, "load").startswith("refused: the safety scan has")
        assert status(verdicts, name)["predictions"] == "failed"
        assert status(verdicts, name)["finite"] == "passed"
    assert not marker.exists(), "the Lambda layer's code ran"
    result.stdout.fnmatch_lines(
        ["models/lambda.h5: safety: 1 finding(s):", "  - ?lambda-bytecode? *'lam/touch'*"]
    )


def test_a_config_naming_a_function_outside_keras_fails_safety(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    stage(pytester.path / "models", gate_files, ["foreign.keras"])
    _, verdicts = run_gate(pytester)
    assert status(verdicts, "foreign.keras")["safety"] == "failed"
    assert "layer 'clf/out' > activation: function os.system is outside Keras" in message(
        verdicts, "foreign.keras", "safety"
    )
    assert message(verdicts, "foreign.keras", "load").startswith("refused")
    _, verdicts = run_gate(pytester, "--keras-allowed-modules", "os", "-k", "safety")
    assert status(verdicts, "foreign.keras") == {"safety": "passed"}


def test_load_failure_explains_a_hdf5_file_named_keras(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    stage(pytester.path / "models", gate_files, ["h5named.keras"])
    _, verdicts = run_gate(pytester, "-k", "integrity or load")
    text = message(verdicts, "h5named.keras", "load")
    writer = verdicts["h5named.keras"]["writer"]
    assert text.splitlines()[0] == (
        f"load_model failed on a file written by Keras {writer} (installed: Keras {_installed()})"
    )
    assert "legacy HDF5 file named .keras" in text and "Rename it to .h5" in text
    assert "Keras said: ValueError: File not found" in text
    assert "extension .keras but the content is legacy HDF5" in message(
        verdicts, "h5named.keras", "integrity"
    )


def _installed() -> str:
    from importlib.metadata import version

    return version("keras")


def test_budgets(pytester: pytest.Pytester, gate_files: dict[str, Path]) -> None:
    stage(pytester.path / "models", gate_files, ["clf.keras", "wider.keras"])
    result, verdicts = run_gate(
        pytester,
        "-k",
        "budgets",
        "--keras-max-params",
        "30",
        "--keras-max-file-size",
        "1MB",
        "--keras-allowed-versions",
        "3.*",
    )
    result.assert_outcomes(passed=1, failed=1, deselected=12)
    assert message(verdicts, "wider.keras", "budgets") == (
        "over budget:\n  - 32 parameters, budget 30"
    )
    _, verdicts = run_gate(pytester, "-k", "budgets", "--keras-allowed-versions", "2.*")
    assert "written by Keras 3." in message(verdicts, "clf.keras", "budgets")
    assert "allowed ['2.*']" in message(verdicts, "clf.keras", "budgets")
    _, verdicts = run_gate(pytester, "-k", "budgets", "--keras-max-file-size", "1KB")
    assert "bytes, budget 1024" in message(verdicts, "clf.keras", "budgets")
    sidecar = pytester.path / "models" / "wider.keras.budget.json"
    sidecar.write_text('{"max_params": 40, "max_file_size": "1KB"}')
    _, verdicts = run_gate(pytester, "-k", "budgets", "--keras-max-params", "30")
    assert message(verdicts, "wider.keras", "budgets") == (
        "over budget (budgets from wider.keras.budget.json):\n"
        f"  - size {verdicts['wider.keras']['size']} bytes, budget 1024"
    )
    assert status(verdicts, "clf.keras") == {"budgets": "passed"}  # 26 <= 30, no sidecar
    sidecar.write_text('{"max_parameters": 40}')
    _, verdicts = run_gate(pytester, "-k", "wider and budgets")
    assert "the budget file wider.keras.budget.json cannot be used: unknown key(s)" in message(
        verdicts, "wider.keras", "budgets"
    )


def test_load_failure_names_the_layer_keras_cannot_rebuild(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    stage(pytester.path / "models", gate_files, ["keras2_lstm.h5"])
    _, verdicts = run_gate(pytester, "-k", "load")
    text = message(verdicts, "keras2_lstm.h5", "load")
    assert text.startswith("load_model failed on a file written by Keras 2.21.0")
    assert "why: the saved config of a LSTM layer has argument(s) {'time_major': False}" in text
    assert "Keras said: ValueError: Unrecognized keyword arguments passed to LSTM" in text


@pytest.mark.parametrize("in_background", [False, True])
def test_crc_damage_fails_integrity_whether_checked_in_background_or_not(
    in_background: bool, gate_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large .keras has its CRCs checked in a thread while the weights are scanned: a damaged
    member fails integrity all the same, and a healthy archive passes."""
    from pytest_kerasmodel.gate import checks

    threshold = 0 if in_background else 2**62
    monkeypatch.setattr(checks, "CRC_IN_BACKGROUND_BYTES", threshold)
    ran_in: list[str] = []
    real_run = checks._BackgroundCrcCheck.run

    def run(self: checks._BackgroundCrcCheck) -> None:
        ran_in.append(threading.current_thread().name)
        real_run(self)

    monkeypatch.setattr(checks._BackgroundCrcCheck, "run", run)
    verdicts = {
        name: checks.check_artifact(
            {"path": str(gate_files[name]), "checks": ["integrity", "finite"]}
        )["checks"]
        for name in ("crc.keras", "clf.keras")
    }
    integrity = verdicts["crc.keras"]["integrity"]
    assert integrity["status"] == "failed"
    assert "member 'model.weights.h5' fails its CRC check" in integrity["message"]
    assert verdicts["crc.keras"]["finite"]["message"] == "not checked: the integrity check failed"
    assert {c: r["status"] for c, r in verdicts["clf.keras"].items()} == {
        "integrity": "passed",
        "finite": "passed",
    }
    assert ran_in == (["kerasmodel-zip-crc"] * 2 if in_background else [])


def test_a_large_run_lists_only_the_failing_artifacts_unless_verbose(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    models = stage(pytester.path / "models", gate_files, ["truncated.h5"])
    for i in range(FULL_TABLE_ROWS):
        (models / f"ok_{i:02d}.keras").hardlink_to(gate_files["clf.keras"])
    result, verdicts = run_gate(pytester, "-k", "integrity")
    assert len(verdicts) == FULL_TABLE_ROWS + 1  # the report has every row
    result.stdout.fnmatch_lines(
        [
            "artifact*format*integrity",
            "models/truncated.h5 *FAIL",
            f"({FULL_TABLE_ROWS} artifact(s) passing every check not listed: -v lists them, "
            "--keras-report PATH writes every row)",
            f"{FULL_TABLE_ROWS + 1} artifact(s), 1 failing at least one check",
        ]
    )
    assert "models/ok_00.keras" not in result.stdout.str().split("keras artifacts")[-1]
    verbose, _ = run_gate(pytester, "-k", "integrity", "-v")
    verbose.stdout.fnmatch_lines(["models/ok_00.keras *ok", "models/ok_49.keras *ok"])
    assert "not listed" not in verbose.stdout.str()
