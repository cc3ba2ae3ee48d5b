"""The gate over the newer layouts: unzipped model folders, sharded weights and KerasHub presets
pass when healthy and fail the right check when hostile; files no artifact holds are listed as
not checked, and fail under --keras-strict."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from builders.gate_artifacts import message, run_gate, status
from builders.layouts import FOREIGN_MARKER, FOREIGN_MODULE, MARKER_NAME, copy_artifact, gate_report

ALL_OK = {"integrity": "passed", "safety": "passed", "load": "passed", "finite": "passed"}
NO_GOLDEN = {"structure": "skipped", "predictions": "skipped"}
HUB = ("--keras-allowed-modules", "keras_hub")
#: where isolation is not the point, checks run in the test process (Keras already imported)
IN_PROCESS = "--keras-no-isolation"


def _copy_sharded(src: Path, models: Path) -> None:
    models.mkdir(parents=True, exist_ok=True)
    for file in src.iterdir():
        shutil.copyfile(file, models / file.name)


def test_a_model_folder_and_sharded_weights_pass(
    pytester: pytest.Pytester, layout_files: dict[str, Path]
) -> None:
    models = pytester.path / "models"
    copy_artifact(layout_files["mlp_dir"], models / "mlp_dir")
    _copy_sharded(layout_files["sharded"], models)
    result, verdicts = run_gate(pytester, IN_PROCESS)
    assert result.ret == pytest.ExitCode.OK
    assert set(verdicts) == {"mlp_dir", "w.weights.json"}  # the shards are no artifacts
    assert status(verdicts, "mlp_dir") == {**ALL_OK, **NO_GOLDEN}
    assert status(verdicts, "w.weights.json") == {**ALL_OK, "load": "skipped", **NO_GOLDEN}
    assert "weights-only" in message(verdicts, "w.weights.json", "load")
    assert verdicts["mlp_dir"]["format"] == "keras-dir"
    assert verdicts["w.weights.json"]["format"] == "weights.json"
    assert verdicts["mlp_dir"]["params"] == verdicts["w.weights.json"]["params"] == 24
    result.stdout.fnmatch_lines(
        [
            "models/mlp_dir *keras-dir *3.* 24 *ok *ok *ok *ok *skip (no golden) *skip (no golden)",
            "models/w.weights.json *weights.json *? *24 *ok *ok *skip (weights only) *ok "
            "*skip (no golden) *skip (no golden)",
            "2 artifact(s), 0 failing at least one check",
        ]
    )
    result.stdout.no_fnmatch_line("*w_0000*")  # no item, no row, no "not checked" for a shard
    result.stdout.no_fnmatch_line("not checked:*")


def test_healthy_presets_pass(pytester: pytest.Pytester, preset_files: dict[str, Path]) -> None:
    """A task, a backbone and a sharded preset pass every check, loaded through KerasHub; the
    shards are parts of the preset, never items of their own."""
    models = pytester.path / "models"
    names = ["task_preset", "backbone_preset", "sharded_preset"]
    for name in names:
        copy_artifact(preset_files[name], models / name)
    result, verdicts = run_gate(pytester, IN_PROCESS)
    assert result.ret == pytest.ExitCode.OK
    assert set(verdicts) == set(names)
    for name in names:
        assert status(verdicts, name) == {**ALL_OK, **NO_GOLDEN}, name
        assert verdicts[name]["format"] == "kerashub-preset"
    result.stdout.fnmatch_lines(["models/sharded_preset *kerashub-preset *ok *ok *ok *ok*"])
    result.stdout.no_fnmatch_line("*model_0000*")


def test_hostile_folder_and_manifest_fail_and_nothing_runs(
    pytester: pytest.Pytester, layout_files: dict[str, Path]
) -> None:
    models = pytester.path / "models"
    copy_artifact(layout_files["lambda_dir"], models / "lambda_dir")
    _copy_sharded(layout_files["outside"], models / "evil")
    # the shard it names really is there, one folder up from the manifest
    shutil.copyfile(layout_files["outside.weights.h5"], models / "outside.weights.h5")
    result, verdicts = run_gate(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert not (layout_files["lambda_dir"].parent / MARKER_NAME).exists()

    lam = status(verdicts, "lambda_dir")
    assert (lam["integrity"], lam["safety"], lam["load"]) == ("passed", "failed", "failed")
    assert "[lambda] config.json: layer 'lam/touch'" in message(verdicts, "lambda_dir", "safety")
    assert "refused: the safety scan" in message(verdicts, "lambda_dir", "load")

    evil = status(verdicts, "w.weights.json")
    assert (evil["integrity"], evil["safety"]) == ("failed", "failed")
    assert "'../outside.weights.h5'" in message(verdicts, "w.weights.json", "integrity")
    assert "[reference-outside]" in message(verdicts, "w.weights.json", "safety")
    assert status(verdicts, "outside.weights.h5")["integrity"] == "passed"  # an artifact of its own
    result.stdout.fnmatch_lines(
        [
            "models/evil/w.weights.json: integrity: refused before reading any data: the "
            "manifest names the shard '../outside.weights.h5'*",
            "*[[]reference-outside[]] w.weights.json: weight_map: names the shard "
            "'../outside.weights.h5'*",
        ]
    )


def test_a_preset_naming_a_foreign_module_fails_safety_and_is_never_imported(
    pytester: pytest.Pytester, preset_files: dict[str, Path]
) -> None:
    from builders.layouts import write_foreign_module

    marker = write_foreign_module(pytester.path)
    pytester.syspathinsert()  # the module would import, if anything imported it
    copy_artifact(preset_files["foreign_preset"], pytester.path / "models" / "foreign_preset")
    result, verdicts = run_gate(pytester, *HUB)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert not marker.exists(), f"{FOREIGN_MARKER} written: the module was imported"
    checks = status(verdicts, "foreign_preset")
    assert (checks["integrity"], checks["safety"], checks["load"]) == ("passed", "failed", "failed")
    assert f"module {FOREIGN_MODULE!r}, outside Keras" in message(
        verdicts, "foreign_preset", "safety"
    )
    result.stdout.fnmatch_lines(
        [
            "models/foreign_preset: safety: 1 finding(s):",
            f"*[[]foreign-module[]] config.json: layer 'bert_backbone': *'{FOREIGN_MODULE}'*",
        ]
    )


# --- files no artifact holds ----------------------------------------------------------------

UNCHECKED = ["models/notes.txt", "models/preset/README.md", "models/scaler.pkl"]


@pytest.fixture
def mixed_folder(pytester: pytest.Pytester, preset_files: dict[str, Path]) -> Path:
    """model.keras with its goldens and budget sidecar (from examples/, renamed), notes.txt,
    scaler.pkl, and a preset with a README.md."""
    examples = Path(__file__).resolve().parents[1] / "examples" / "models"
    models = pytester.path / "models"
    models.mkdir()
    for suffix in ("", ".golden.json", ".golden.npz", ".budget.json"):
        shutil.copyfile(
            examples / f"iris_classifier.keras{suffix}", models / f"model.keras{suffix}"
        )
    golden = models / "model.keras.golden.json"
    golden.write_text(golden.read_text().replace("iris_classifier.keras", "model.keras"))
    (models / "notes.txt").write_text("trained on the 2024 split\n")
    (models / "scaler.pkl").write_bytes(b"\x80\x04N.")
    copy_artifact(preset_files["backbone_preset"], models / "preset")
    (models / "preset" / "README.md").write_text("# a tiny BERT\n")
    return models


def test_files_no_artifact_holds_are_listed_not_checked(
    pytester: pytest.Pytester, mixed_folder: Path
) -> None:
    result, report = gate_report(pytester, *HUB, IN_PROCESS)
    assert result.ret == pytest.ExitCode.OK
    assert set(report["by_id"]) == {"models/model.keras", "models/preset"}
    checks = report["by_id"]["models/model.keras"]["checks"]
    assert {c: v["status"] for c, v in checks.items()} == {
        **ALL_OK,
        "structure": "passed",
        "predictions": "passed",
        "budgets": "passed",
    }
    assert report["not_checked"] == UNCHECKED
    result.stdout.fnmatch_lines(
        [
            "2 artifact(s), 0 failing at least one check",
            "not checked: 3 file(s) (no Keras artifact holds them; --keras-strict fails each): "
            + ", ".join(UNCHECKED),
        ]
    )
    result.stdout.no_fnmatch_line("*.golden.*")  # goldens and sidecars are the gate's own
    result.stdout.no_fnmatch_line("*budget.json*")


@pytest.mark.parametrize("how", ["flag", "ini"])
def test_strict_fails_each_file_no_artifact_holds(
    pytester: pytest.Pytester, mixed_folder: Path, how: str
) -> None:
    if how == "ini":
        pytester.makeini("[pytest]\nkeras_strict = true\n")
        args = ["--keras-model-dir", "models", "-k", "recognised"]
    else:
        args = ["--keras-model-dir", "models", "--keras-strict", "-k", "recognised"]
    report = pytester.path / "r.json"
    result = pytester.runpytest(*args, "--keras-report", str(report), "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=3, deselected=13)
    result.stdout.fnmatch_lines(
        [
            *(f"FAILED {path}::recognised - *" for path in UNCHECKED),
        ],
        consecutive=False,
    )
    result.stdout.fnmatch_lines(
        [
            "models/scaler.pkl: recognised: no Keras artifact holds this file, so nothing "
            "checked it (--keras-strict)",
            "not checked: 3 file(s) (each fails its ::recognised item): " + ", ".join(UNCHECKED),
        ]
    )
    assert json.loads(report.read_text())["not_checked"] == UNCHECKED


def test_a_folder_without_artifacts_says_so(pytester: pytest.Pytester) -> None:
    (pytester.path / "models" / "sub").mkdir(parents=True)
    (pytester.path / "models" / "sub" / "readme.txt").write_text("models go here\n")
    result = pytester.runpytest("--keras-model-dir", "models", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(
        [
            "not checked: 1 file(s) *: models/sub/readme.txt",
            "no Keras artifact under models: nothing there was gated*",
        ]
    )


def test_weights_stored_as_npz_are_not_vouched_for(pytester: pytest.Pytester) -> None:
    """Keras's own npz weights format pickles each layer's variables: they are not read, so the
    finite check says so instead of passing over zero variables."""
    from builders import attacks

    models = pytester.path / "models"
    models.mkdir()
    (models / "npz.keras").write_bytes(attacks._npz_weights_keras())
    _, verdicts = run_gate(pytester, "-k", "integrity or finite", IN_PROCESS)
    assert status(verdicts, "npz.keras") == {"integrity": "passed", "finite": "skipped"}
    assert message(verdicts, "npz.keras", "finite").startswith(
        "not checked: the weights are stored as model.weights.npz"
    )
