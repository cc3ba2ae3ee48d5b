"""Each gate check passing and failing on real files, with the reason a maintainer expects."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders.gate_artifacts import MARKER_NAME, message, run_gate, stage, status

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
            "models/clf.h5 *h5 *3.* 26 *KB *ok *ok *ok *ok *skip (no golden) *skip (no golden)",
            "models/clf.keras *keras *3.* 26 *KB *ok *ok *ok *ok *skip (no golden) "
            "*skip (no golden)",
            "models/clf.weights.h5 *weights.h5 *? *26 *KB *ok *ok *skip (weights only) *ok "
            "*skip (no golden) *skip (no golden)",
            "models/keras2.h5 *h5 *2.* *ok *ok *ok *ok *skip (no golden) *skip (no golden)",
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
        assert message(verdicts, name, "load") == "cannot be verified: the integrity check failed"
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
        "1 of 4 numeric dataset(s) hold NaN or Inf:\n  - hidden/kernel: 1 NaN, 2 Inf of 12 values"
    )
    assert message(verdicts, "inf.h5", "finite") == (
        "1 of 4 numeric dataset(s) hold NaN or Inf:\n  - out/bias: 2 Inf of 2 values"
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
        assert "[lambda]" in message(verdicts, name, "safety")
        assert "layer 'lam/touch' > function: a serialised Python function: marshalled" in message(
            verdicts, name, "safety"
        )
        assert message(verdicts, name, "load").startswith("refused: the safety scan has")
        # no golden predictions: nothing to compare, so not a second failure for one cause
        assert status(verdicts, name)["predictions"] == "skipped"
        assert status(verdicts, name)["finite"] == "passed"
    assert not marker.exists(), "the Lambda layer's code ran"
    result.stdout.fnmatch_lines(
        ["models/lambda.h5: safety: 1 finding(s):", "  - ?lambda? *'lam/touch'*"]
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
    assert (
        f"the file was written by Keras 2.21.0, older than the installed Keras {_installed()}: "
    ) in text
    assert f"re-save the model with Keras {_installed()}" in text
    assert "upgrade" not in text


def test_a_file_from_a_newer_keras_says_the_writer_is_newer_and_to_upgrade(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    """Issue 29: Keras 3.12 loading a 3.15 file was told the file came from an older Keras. The
    same gap, made with this Keras: both formats, whatever Keras's own message looks like."""
    stage(pytester.path / "models", gate_files, ["future.keras", "future.h5"])
    _, verdicts = run_gate(pytester, "-k", "load")
    installed = _installed()
    for name in ("future.keras", "future.h5"):
        text = message(verdicts, name, "load")
        assert text.startswith(
            f"load_model failed on a file written by Keras 99.0.0 (installed: Keras {installed})"
        ), text
        assert (
            f"the file was written by Keras 99.0.0, newer than the installed Keras {installed}: "
            "upgrade Keras to at least 99.0.0 (pip install 'keras>=99.0.0'), or re-save the "
            f"model with Keras {installed}"
        ) in text, text
        assert "older" not in text, text


def test_crc32_combine_matches_zlib_over_any_split() -> None:
    from pytest_kerasmodel.gate.zipcrc import crc32_combine

    data = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    for cut in (0, 1, 7, 2500, 4096, 4999, 5000):
        a, b = data[:cut], data[cut:]
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(data), cut


@pytest.fixture(params=["inline", "background"])
def crc_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Whether the zip CRCs are checked inline or by the background job, in units small enough
    that even a tiny archive's members are split into many units (combined in order)."""
    from pytest_kerasmodel.gate import zipcrc

    if request.param == "background":
        monkeypatch.setattr(zipcrc, "CRC_IN_BACKGROUND_BYTES", 0)
        monkeypatch.setattr(zipcrc, "CRC_UNIT_BYTES", 1000)
        monkeypatch.setattr(zipcrc, "CRC_READ_BYTES", 300)
    else:
        monkeypatch.setattr(zipcrc, "CRC_IN_BACKGROUND_BYTES", 2**62)
    return str(request.param)


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


def _events(path: Path, checks_: list[str], **request: Any) -> list[tuple[str, str]]:
    """(check, "start" or the result's status + message) in the order iter_checks yields them."""
    from pytest_kerasmodel.gate.protocol import Request
    from pytest_kerasmodel.gate.runner import iter_checks

    return [
        (name, "start" if result is None else f"{result.status}: {result.message}")
        for name, result, _ in iter_checks(Request(str(path), checks_, **request))
    ]


FILE_ONLY = ["integrity", "safety", "finite", "structure", "budgets"]


def test_crc_damage_fails_integrity_and_its_dependents_whether_checked_in_background_or_not(
    crc_mode: str, gate_files: dict[str, Path], tmp_path: Path
) -> None:
    """While a large archive's CRCs are checked in the background, the file-only checks run;
    a damaged member then fails integrity with the same message, and the checks that needed
    integrity "cannot be verified", their speculative results discarded."""
    from pytest_kerasmodel.gate.runner import check_artifact

    golden = tmp_path / "structure.json"
    base = {"path": str(gate_files["crc.keras"]), "checks": FILE_ONLY}
    check_artifact({**base, "golden_structure": str(golden), "update_golden": True})
    assert not golden.exists()  # nothing written from a damaged file
    verdicts = check_artifact({**base, "max_params": 10**6})["checks"]
    assert verdicts["integrity"]["status"] == "failed"
    assert verdicts["integrity"]["message"] == (
        "a damaged zip archive: member 'model.weights.h5' fails its CRC check"
    )
    assert verdicts["safety"]["status"] == "passed"  # safety does not need integrity
    for name in ("finite", "budgets"):
        assert verdicts[name]["message"] == "cannot be verified: the integrity check failed", name
    assert verdicts["structure"]["status"] == "skipped"  # no golden recorded: nothing to compare

    events = _events(gate_files["crc.keras"], FILE_ONLY, max_params=10**6)
    starts = [name for name, event in events if event == "start"]
    ended = [name for name, event in events if event != "start"]
    if crc_mode == "background":
        # integrity's result waits for its CRCs: the other checks ran meanwhile; integrity
        # "starts" again while its CRC pass ends, so a crash there is blamed on it
        # (structure, with no golden asked for, is skipped without starting)
        assert starts == ["integrity", "safety", "finite", "budgets", "integrity"]
        assert ended == ["safety", "integrity", "finite", "structure", "budgets"]
    else:
        assert starts == ["integrity", "safety"]
        assert ended == ["integrity", "safety", "finite", "structure", "budgets"]


def test_a_healthy_archive_passes_whether_its_crcs_are_checked_in_background_or_not(
    crc_mode: str, gate_files: dict[str, Path], tmp_path: Path
) -> None:
    from pytest_kerasmodel.gate.runner import check_artifact

    golden = tmp_path / "structure.json"
    base = {"path": str(gate_files["clf.keras"]), "golden_structure": str(golden)}
    recorded = check_artifact({**base, "checks": FILE_ONLY, "update_golden": True})["checks"]
    assert recorded["structure"]["message"].startswith("golden structure recorded")
    verdicts = check_artifact({**base, "checks": FILE_ONLY, "max_params": 26})["checks"]
    assert {c: r["status"] for c, r in verdicts.items()} == dict.fromkeys(FILE_ONLY, "passed")
    assert verdicts["finite"]["message"] == "4 numeric dataset(s), 26 values, all finite"
    events = _events(gate_files["clf.keras"], ["integrity"])  # alone: nothing runs meanwhile
    assert events == [("integrity", "start"), ("integrity", events[1][1])]
    assert events[1][1].startswith("passed: ")


def test_a_crc_damaged_archive_is_never_loaded(
    crc_mode: str, gate_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CRC pass ends before anything needs Keras: load never runs on a damaged file."""
    from pytest_kerasmodel.gate import checks
    from pytest_kerasmodel.gate.subject import Subject

    loaded: list[Path] = []
    real_load = checks.load

    def spy(subject: Subject) -> Any:
        loaded.append(subject.path)
        return real_load(subject)

    monkeypatch.setattr(checks, "load", spy)
    events = _events(gate_files["crc.keras"], ["integrity", "safety", "load", "finite"])
    assert ("load", "failed: cannot be verified: the integrity check failed") in events
    assert ("load", "start") not in events
    assert loaded == []
    healthy = _events(gate_files["clf.keras"], ["integrity", "safety", "load", "finite"])
    order = [f"{name} {event.split(':')[0]}" for name, event in healthy]
    assert order.index("integrity passed") < order.index("load start")
    assert "load passed" in order
    assert loaded == [gate_files["clf.keras"]]


def test_crc_damage_without_isolation_in_a_pytest_run(
    crc_mode: str, pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    stage(pytester.path / "models", gate_files, ["crc.keras", "clf.keras"])
    result, verdicts = run_gate(pytester, "--keras-no-isolation")
    assert message(verdicts, "crc.keras", "integrity") == (
        "a damaged zip archive: member 'model.weights.h5' fails its CRC check"
    )
    for name in ("load", "finite"):
        assert (
            message(verdicts, "crc.keras", name) == "cannot be verified: the integrity check failed"
        )
    assert status(verdicts, "crc.keras")["structure"] == "skipped"
    assert status(verdicts, "crc.keras")["predictions"] == "skipped"
    assert status(verdicts, "clf.keras") == {**ALL_OK, **NO_GOLDEN}
    result.stdout.fnmatch_lines(["2 artifact(s), 1 failing at least one check"])


def test_a_check_with_nothing_to_compare_is_skipped_and_one_with_a_golden_cannot_be_verified(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    """One cause is counted once: with no golden, predictions is skipped next to a failing load;
    with goldens recorded, a damaged file's structure and predictions fail as not verifiable."""
    models = stage(pytester.path / "models", gate_files, ["keras2_lstm.h5", "clf.keras"])
    _, verdicts = run_gate(pytester, "--keras-update-golden", "-k", "clf")
    assert (models / "clf.keras.golden.npz").is_file()
    (models / "victim.keras").write_bytes(gate_files["truncated.keras"].read_bytes())
    for suffix in (".golden.json", ".golden.npz"):  # goldens recorded, then the file got damaged
        (models / f"victim.keras{suffix}").write_bytes((models / f"clf.keras{suffix}").read_bytes())
    golden = (
        (models / "victim.keras.golden.json").read_text().replace('"clf.keras"', '"victim.keras"')
    )
    (models / "victim.keras.golden.json").write_text(golden)
    result, verdicts = run_gate(pytester, "--keras-max-params", "100")
    assert status(verdicts, "keras2_lstm.h5") == {
        "integrity": "passed",
        "safety": "passed",
        "load": "failed",
        "finite": "passed",
        "structure": "skipped",  # no golden recorded: nothing to compare
        "predictions": "skipped",
        "budgets": "passed",
    }
    assert "no golden predictions" in message(verdicts, "keras2_lstm.h5", "predictions")
    assert status(verdicts, "victim.keras") == {
        "integrity": "failed",
        "safety": "failed",  # unreadable, so not vouched for (it does not need integrity)
        "load": "failed",
        "finite": "failed",
        "structure": "failed",
        "predictions": "failed",
        "budgets": "failed",
    }
    for name in ("load", "finite", "structure", "predictions", "budgets"):
        assert message(verdicts, "victim.keras", name) == (
            "cannot be verified: the integrity check failed"
        ), name
    assert status(verdicts, "clf.keras")["predictions"] == "passed"
    assert verdicts["victim.keras"]["root_cause"] == {
        "check": "integrity",
        "reason": "not a readable zip archive: File is not a zip file",
    }
    assert verdicts["keras2_lstm.h5"]["root_cause"]["check"] == "load"
    assert verdicts["clf.keras"]["root_cause"] is None
    result.stdout.fnmatch_lines(
        [
            "3 artifact(s), 2 failing at least one check",
            "2 failing artifacts, by root cause:",
            "  models/keras2_lstm.h5: load (the saved config of a LSTM layer has argument(s) *)",
            "  models/victim.keras: integrity (not a readable zip archive: File is not a zip file)",
        ]
    )


def test_the_summary_names_each_root_cause_once(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    stage(pytester.path / "models", gate_files, ["lambda.keras", "crc.keras", "nan.keras"])
    result, verdicts = run_gate(pytester)
    assert verdicts["lambda.keras"]["root_cause"] == {"check": "safety", "reason": "1 finding"}
    assert verdicts["nan.keras"]["root_cause"] == {
        "check": "finite",
        "reason": (
            "1 of 4 numeric dataset(s) hold NaN or Inf: hidden/kernel: 1 NaN, 2 Inf of 12 values"
        ),
    }
    result.stdout.fnmatch_lines(
        [
            "3 artifact(s), 3 failing at least one check",
            "3 failing artifacts, by root cause:",
            "  models/crc.keras: integrity (a damaged zip archive: member 'model.weights.h5' *)",
            "  models/lambda.keras: safety (1 finding)",
            "  models/nan.keras: finite (1 of 4 numeric dataset(s) hold NaN or Inf: hidden/*)",
        ]
    )


def test_an_archive_failing_integrity_still_shows_its_format(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    from pytest_kerasmodel.gate.subject import guess_format

    expected = {
        "truncated.keras": "keras",  # no central directory: read from the first local headers
        "crc.keras": "keras",
        "clf.keras": "keras",
        "clf.h5": "h5",
        "keras2.h5": "h5",
        "clf.weights.h5": "weights.h5",
        "truncated.h5": "unknown",  # HDF5 refuses to open it: no family to tell
        "garbage.keras": "unknown",
        "empty.h5": "unknown",
    }
    assert {name: guess_format(gate_files[name]) for name in expected} == expected
    stage(pytester.path / "models", gate_files, ["truncated.keras", "crc.keras", "truncated.h5"])
    result, verdicts = run_gate(pytester, "-k", "integrity")
    assert {name: row["format"] for name, row in verdicts.items()} == {
        "truncated.keras": "keras",
        "crc.keras": "keras",
        "truncated.h5": "unknown",
    }
    result.stdout.fnmatch_lines(["models/truncated.keras *keras *? *? *KB *FAIL"])


def test_a_model_never_built_loads_with_an_unknown_parameter_count(
    pytester: pytest.Pytester,
) -> None:
    """Keras saves and loads a Sequential never built (like a published TextVectorization-only
    model): load passes; its parameter count is unknown, so max_params cannot be verified."""
    import keras

    models = pytester.path / "models"
    models.mkdir()
    unbuilt = keras.Sequential([keras.layers.Dense(2, name="out")], name="unbuilt")
    with pytest.warns(UserWarning, match="has not yet been built"):
        unbuilt.save(models / "unbuilt.keras")
    result, verdicts = run_gate(
        pytester, "--keras-max-params", "10", "--keras-max-file-size", "1MB"
    )
    row = verdicts["unbuilt.keras"]
    assert row["checks"]["load"] == {
        "status": "passed",
        "message": "Sequential 'unbuilt', never built: parameter count unknown",
        "cached": False,
    }
    assert row["params"] is None
    assert row["checks"]["budgets"]["status"] == "failed"
    assert row["checks"]["budgets"]["message"] == (
        "cannot be verified:\n  - parameter count unknown (the model was never built, so its "
        "layers have no variables yet), budget 10"
    )
    result.stdout.fnmatch_lines(["models/unbuilt.keras *keras *3.* *? *KB *ok *ok *ok *ok*"])
