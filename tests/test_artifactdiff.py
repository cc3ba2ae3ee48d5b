"""assert_artifacts_match and ``kerasmodel diff``: two artifacts compared by Keras names.

Real models written by the real Keras: a model, its own copies in other formats (no
difference), a copy trained one more step (each changed weight named, with numpy's figures),
and a model with one more layer (a structure difference).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_kerasmodel import (
    ArtifactDiff,
    ArtifactsDiffer,
    StructureError,
    artifacts_diff,
    assert_artifacts_match,
    read_weights,
)
from pytest_kerasmodel.cli import main


def _mlp(keras: Any, extra: bool = False) -> Any:
    layers = [
        keras.Input((4,), name="x"),
        keras.layers.Dense(3, activation="relu", name="hidden"),
    ]
    if extra:
        layers.append(keras.layers.Dense(3, name="extra"))
    layers.append(keras.layers.Dense(2, name="out"))
    model = keras.Sequential(layers, name="mlp")
    model.compile(optimizer=keras.optimizers.Adam(name="adam"), loss="mse")
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``base`` (.keras, .h5, .weights.h5, unzipped folder), ``retrained`` (.keras, .h5: one
    more training step) and ``extra.keras`` (one more Dense layer)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    folder = tmp_path_factory.mktemp("diff")
    keras.utils.set_random_seed(0)
    x = np.linspace(-1, 1, 32, dtype="float32").reshape(8, 4)
    y = np.ones((8, 2), "float32")
    model = _mlp(keras)
    model.fit(x, y, epochs=1, verbose=0)
    files = {
        "base.keras": folder / "base.keras",
        "base.h5": folder / "base.h5",
        "base.weights.h5": folder / "base.weights.h5",
        "base_dir": folder / "base_dir",
        "retrained.keras": folder / "retrained.keras",
        "retrained.h5": folder / "retrained.h5",
        "extra.keras": folder / "extra.keras",
    }
    model.save(files["base.keras"])
    model.save(files["base.h5"])
    model.save_weights(files["base.weights.h5"])
    keras.saving.save_model(model, files["base_dir"], zipped=False)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(files["retrained.keras"])
    model.save(files["retrained.h5"])
    extra = _mlp(keras, extra=True)
    extra.fit(x, y, epochs=1, verbose=0)
    extra.save(files["extra.keras"])
    return files


@pytest.mark.parametrize("other", ["base.h5", "base.weights.h5", "base_dir", "base.keras"])
def test_a_model_matches_its_own_copies_in_every_format(
    models: dict[str, Path], other: str
) -> None:
    assert_artifacts_match(models["base.keras"], models[other], check_optimizer=True)
    diff = artifacts_diff(models["base.keras"], models[other], check_optimizer=True)
    assert not diff and diff.weights_compared == 4
    assert diff.optimizer_compared == (
        len(read_weights(models["base.keras"])) * 2 + 2  # Adam: iterations, lr, m and v each
    )


def test_the_keras_and_h5_of_the_session_models_match(keras3_files: dict[str, Path]) -> None:
    # a Bidirectional LSTM, BatchNormalization, nested models: names line up across formats
    assert_artifacts_match(keras3_files["keras"], keras3_files["h5"], check_optimizer=True)
    assert_artifacts_match(keras3_files["rich.keras"], keras3_files["rich.h5"])
    assert_artifacts_match(keras3_files["rich.h5"], keras3_files["rich.weights.h5"])


def test_a_retrained_copy_names_each_changed_weight_with_figures(
    models: dict[str, Path],
) -> None:
    with pytest.raises(ArtifactsDiffer) as excinfo:
        assert_artifacts_match(models["base.keras"], models["retrained.h5"], rtol=1e-7)
    diff = excinfo.value.diff
    assert isinstance(diff, ArtifactDiff) and not diff.structure and not diff.config
    with read_weights(models["base.keras"]) as old, read_weights(models["retrained.h5"]) as new:
        changed = [n for n in old if not np.array_equal(old[n], new[n])]
        assert changed and [d.name for d in diff.weights] == changed
        for d in diff.weights:  # numpy's figures, from the arrays themselves
            e, a = old[d.name].astype(np.float64), new[d.name].astype(np.float64)
            bad = ~np.isclose(a, e, rtol=1e-7, atol=0.0)
            assert d.mismatched == int(bad.sum()) and d.total == e.size
            assert d.max_abs_diff == pytest.approx(float(np.abs(a - e)[bad].max()))
    text = str(excinfo.value)
    assert text.splitlines()[0].endswith(
        "base.keras (keras) vs " + str(models["retrained.h5"]) + " (h5): the artifacts differ "
        "(rtol=1e-07, atol=0)"
    )
    assert f"weights: {len(changed)} of 4 compared differ" in text
    first = diff.weights[0]
    assert (
        f"  {first.name}: shape {first.expected_shape} float32: {first.mismatched} of "
        f"{first.total} elements differ" in text
    )
    assert "index" in text and "expected" in text  # the worst positions, numpy-style


def test_the_optimizer_is_compared_on_request(models: dict[str, Path]) -> None:
    weights_only = artifacts_diff(models["base.keras"], models["retrained.keras"])
    assert weights_only.optimizer_compared is None and not weights_only.optimizer
    full = artifacts_diff(models["base.keras"], models["retrained.keras"], check_optimizer=True)
    assert {d.name for d in full.optimizer} >= {"optimizer/0"}  # the iteration count moved
    assert "optimizer: " in full.render()


def test_tolerances_are_numpys(models: dict[str, Path]) -> None:
    assert_artifacts_match(models["base.keras"], models["retrained.keras"], atol=1.0)


def test_an_extra_layer_is_a_structure_difference(models: dict[str, Path]) -> None:
    with pytest.raises(StructureError) as excinfo:
        assert_artifacts_match(models["base.keras"], models["extra.keras"])
    diff = excinfo.value.diff
    changes = {(c.op, c.path) for c in diff.structure}
    assert {("+", "layers/extra"), ("+", "extra/kernel"), ("+", "extra/bias")} <= changes
    # the new layer's weights are structure too, and its values are not compared with any
    assert "extra/kernel" not in {d.name for d in diff.weights}
    text = str(excinfo.value)
    assert "  + layers/extra: unexpected Dense" in text
    assert "  + extra/kernel: unexpected (3, 3) float32" in text
    assert "  ~ config.layers: [{'module': 'keras.layers', 'class_name': 'InputLayer'" in text


def test_diff_exit_status_like_h5diff(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, h5 = str(models["base.keras"]), str(models["base.h5"])
    assert main(["diff", base, h5, "--no-isolation"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{base} (keras) vs {h5} (h5): no difference in structure, config, 4")
    assert main(["diff", base, str(models["retrained.keras"]), "--no-isolation"]) == 1
    assert "the artifacts differ" in capsys.readouterr().out
    assert main(["diff", base, str(models["extra.keras"]), "--no-isolation", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert ArtifactDiff.from_dict(data).to_dict() == data
    assert any(c["path"] == "layers/extra" for c in data["structure"])
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"not a model\n" * 8)
    assert main(["diff", base, str(garbage), "--no-isolation"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {garbage}: format: neither HDF5 nor zip")
    assert main(["diff", base, str(tmp_path / "missing.keras"), "--no-isolation"]) == 2


def test_the_console_script_diffs_in_an_isolated_child(
    models: dict[str, Path], tmp_path: Path
) -> None:
    script = Path(sys.executable).with_name("kerasmodel")
    same = subprocess.run(
        [script, "diff", models["base.keras"], models["base_dir"]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert same.returncode == 0, same.stderr
    differ = subprocess.run(
        [script, "diff", models["base.keras"], models["retrained.h5"], "--optimizer"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert differ.returncode == 1, differ.stderr
    assert "weights: 4 of 4 compared differ" in differ.stdout
    assert "hidden/kernel: shape (4, 3) float32: " in differ.stdout
    from builders.attacks import hdf5_hang_h5

    hang = hdf5_hang_h5(tmp_path)
    hung = subprocess.run(
        [script, "diff", models["base.h5"], hang, "--timeout", "3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert hung.returncode == 2
    assert "isolation: reading the file did not finish within 3 s" in hung.stderr


def test_blocks_give_the_report_of_one_whole_comparison(
    models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a weight read in many blocks of rows is reported as one comparison of the whole arrays
    import h5py

    from pytest_kerasmodel.compare import compare_arrays
    from pytest_kerasmodel.structure import match as artifactdiff

    monkeypatch.setattr(artifactdiff, "BLOCK_BYTES", 12)  # one row of the (4, 3) kernel
    with h5py.File(models["base.h5"]) as old, h5py.File(models["retrained.h5"]) as new:
        e = old["model_weights/hidden/mlp/hidden/kernel"]
        a = new["model_weights/hidden/mlp/hidden/kernel"]
        for rtol in (0.0, 1e-3, 1.0):
            blocks = artifactdiff.compare_datasets("hidden/kernel", e, a, rtol, 0.0)
            whole = compare_arrays("hidden/kernel", e[()], a[()], rtol, 0.0)
            assert (blocks and blocks.to_dict()) == (whole and whole.to_dict())
        assert artifactdiff.compare_datasets("k", e, e, 0.0, 0.0) is None
