"""Every skip of the gate says why: in ``-v``, in ``-rs`` (at the item), in the summary table
(``skip (no golden)``), in ``--keras-report`` (``reason`` beside
the whole ``message``) and in ``kerasmodel gate -v``; and a KerasHub sequence model with fewer
learned positions than the generated inputs' default length records its golden predictions
instead of failing to and then skipping for want of one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from builders.gate_artifacts import run_gate, stage

from pytest_kerasmodel.gate.protocol import SKIP_LABELS, skip_label

KERASMODEL = Path(sys.executable).with_name("kerasmodel")


def test_every_label_is_reachable_and_unknown_messages_still_get_one() -> None:
    # first match wins: an entry shadowed by an earlier, shorter prefix would never be given
    for i, (prefix, label) in enumerate(SKIP_LABELS):
        assert skip_label(prefix + " and more") == label, prefix
        assert not any(prefix.startswith(p) for p, _ in SKIP_LABELS[:i]), prefix
    assert skip_label("weights are sealed: nothing read") == "weights are sealed"
    assert skip_label("") == "no reason given"

    # every format's not-applicable reason, as the load, compile and predictions checks say it,
    # has a label of its own, not the catch-all
    from pytest_kerasmodel import artifacts
    from pytest_kerasmodel.gate.protocol import NO_BUDGET, NOT_READ_ORBAX, not_applicable

    said = [NO_BUDGET, NOT_READ_ORBAX]
    for fmt in artifacts.FORMAT_TITLES:
        for check in ("load", "finite", "predictions"):
            reason = not_applicable(check, fmt)
            if reason:
                said += [reason, reason.replace("load_model", "load_model(compile=True)")]
    for reason in said:
        assert skip_label(reason) != "not applicable", reason


@pytest.mark.parametrize("workers", ["0", "2"])
def test_each_skip_names_its_reason_everywhere(
    pytester: pytest.Pytester, gate_files: dict[str, Path], workers: str
) -> None:
    stage(pytester.path / "models", gate_files, ["clf.keras", "clf.weights.h5"])
    result, verdicts = run_gate(pytester, "-v", "-rs", "-n", workers)
    assert result.ret == 0, result.stdout.str()
    if workers == "0":  # under xdist, pytest's -v line has the word alone
        result.stdout.fnmatch_lines(
            [
                "*clf.keras::structure SKIPPED (no golden structure*",
                "*clf.weights.h5::load SKIPPED (not applicable: a weights-only*",
            ]
        )
    # -rs: the whole reason, at the artifact, with how to record the golden
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] models/clf.keras::predictions: no golden predictions "
            "(*models/clf.keras.golden.npz); record it with: pytest --keras-model-dir DIR "
            "--keras-update-golden",
            "SKIPPED [[]1[]] models/clf.weights.h5::load: not applicable: a weights-only file*",
        ]
    )
    row = next(line for line in result.stdout.lines if line.startswith("models/clf.weights.h5 "))
    assert "skip (weights only)" in row and "skip (no golden)" in row, row
    row = next(line for line in result.stdout.lines if line.startswith("models/clf.keras "))
    assert row.count("skip (no golden)") == 2, row
    for artifact in verdicts.values():
        for check, entry in artifact["checks"].items():
            if entry["status"] == "skipped":
                assert entry["reason"] == skip_label(entry["message"]), check
                assert entry["message"] and entry["reason"], check
            else:
                assert "reason" not in entry, check
    assert verdicts["clf.keras"]["checks"]["structure"]["reason"] == "no golden"


def test_kerasmodel_gate_prints_each_skip_with_its_reason(
    gate_files: dict[str, Path], tmp_path: Path
) -> None:
    stage(tmp_path, gate_files, ["clf.weights.h5"])
    report = tmp_path / "r.json"
    done = subprocess.run(
        [str(KERASMODEL), "gate", ".", "-v", "--json", str(report)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "SKIPPED (weights only) clf.weights.h5::load: not applicable: a weights-only file"
        in done.stdout
    ), done.stdout
    assert "skip (weights only)" in done.stdout
    checks = json.loads(report.read_text())["artifacts"][0]["checks"]
    assert checks["load"]["reason"] == "weights only"


@pytest.fixture(scope="module")
def short_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A KerasHub GPT-2 preset from keras-hub's own tiny test config: 5 learned positions,
    fewer than the 8 the generated inputs give an unknown length."""
    keras_hub: Any = pytest.importorskip("keras_hub")
    folder = tmp_path_factory.mktemp("short") / "gpt2"
    keras_hub.models.GPT2Backbone(
        vocabulary_size=10,
        num_layers=1,
        num_heads=1,
        hidden_dim=2,
        intermediate_dim=4,
        max_sequence_length=5,
    ).save_to_preset(folder)
    return folder


def test_a_preset_with_few_positions_records_and_checks_its_predictions(
    pytester: pytest.Pytester, short_gpt2: Path
) -> None:
    import shutil

    shutil.copytree(short_gpt2, pytester.path / "models" / "gpt2")
    checks = "--keras-checks=integrity,safety,load,predictions"
    recorded, verdicts = run_gate(pytester, checks, "--keras-update-golden")
    assert recorded.ret == 0, recorded.stdout.str()
    said = verdicts["gpt2"]["checks"]["predictions"]["message"]
    assert "unknown dimensions 4: the model refuses 8" in said, said
    checked, verdicts = run_gate(pytester, checks, "-v")
    assert checked.ret == 0, checked.stdout.str()
    checked.stdout.fnmatch_lines(["*gpt2::predictions PASSED*"])
    assert verdicts["gpt2"]["checks"]["predictions"]["status"] == "passed"
