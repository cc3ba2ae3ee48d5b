"""python -m pytest_kerasmodel inspect PATH [--json] [--scan-values]."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from pytest_kerasmodel.__main__ import main


def test_inspect_as_a_module_explains_the_file(keras3_files: dict[str, Path]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest_kerasmodel", "inspect", str(keras3_files["keras"])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("tiny.keras  (")
    assert "format:         keras: .keras zip archive (config.json + model.weights.h5)" in out
    assert "model:          Functional 'tiny'" in out
    assert "parameters:     200 in 13 saved variable(s)" in out
    assert "    bi       Bidirectional               144" in out
    assert "      forward/recurrent_kernel     (3, 12)          float32" in out
    assert "optimizer:      Adam, 24 saved variable(s), 386 values" in out


def test_inspect_json_is_the_description(
    keras3_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_kerasmodel import describe_artifact

    assert main(["inspect", str(keras3_files["h5"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == describe_artifact(keras3_files["h5"])


def test_inspect_notes_extension_mismatch_and_nan(
    keras3_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_kerasmodel import describe_artifact

    odd = tmp_path / "model.keras"  # an HDF5 file named .keras, as found in the wild
    shutil.copy(keras3_files["h5"], odd)
    with h5py.File(odd, "r+") as f:
        f["model_weights/out/out/kernel"][0, 0] = np.nan
    assert main(["inspect", str(odd)]) == 0
    out = capsys.readouterr().out
    assert "format:         h5: legacy HDF5 full model" in out
    assert "! extension .keras but the content is legacy HDF5 full model" in out
    assert "NaN" not in out  # values are read only on request
    assert main(["inspect", str(odd), "--scan-values"]) == 0
    out = capsys.readouterr().out
    # every numeric dataset: the 13 weights and the optimizer's variables
    scanned = 13 + len(describe_artifact(odd)["optimizer"]["variables"])
    assert f"values:         {scanned} numeric dataset(s) scanned, 1 with NaN or infinite" in out
    assert "! weight out/kernel holds 1 NaN and 0 infinite value(s)" in out


def test_inspect_notes_lambda_layers(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "lambda.h5"
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {"class_name": "Lambda", "config": {"name": "sneaky", "function": ["YWJj", None]}}
            ],
        },
    }
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.4.0"
        f.create_group("model_weights").attrs["layer_names"] = np.array([b"sneaky"])
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "written by:     Keras 2.4.0" in out
    assert "! Lambda layer 'sneaky': its function is stored as Python bytecode" in out


def test_inspect_unreadable_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.h5"
    path.write_text("just text")
    assert main(["inspect", str(path), "--no-isolation"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: format: neither HDF5 nor zip")


def test_inspect_survives_an_hdf5_hang(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from builders.attacks import hdf5_hang_h5

    path = hdf5_hang_h5(tmp_path)
    assert main(["inspect", str(path), "--timeout", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: isolation: reading the file did not finish within 3 s")


def test_inspect_reports_multiline_errors_from_the_child(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "script.keras"
    path.write_text("print('hello')")
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[:2] == [
        f'error: {path}: format: neither HDF5 nor zip: the file starts with b"print(\'h"',
        "  hint: Keras artifacts are .keras zips, HDF5 files (.h5, .weights.h5), "
        ".weights.json manifests, or model, preset and SavedModel folders",
    ]


def test_inspect_names_a_savedmodel_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "exported"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"\x08\x01")
    (saved / "keras_metadata.pb").write_bytes(b"")
    assert main(["inspect", str(saved), "--no-isolation"]) == 0
    out = capsys.readouterr().out
    assert "format:         savedmodel: TensorFlow SavedModel directory" in out
    assert "parameters:     not read (TensorFlow checkpoint under variables/)" in out
    assert "! tf.keras SavedModel (keras_metadata.pb): Keras 3 cannot load it" in out
