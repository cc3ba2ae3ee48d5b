"""Every dataset and attribute accounted for: the layers a subclassed model holds as attributes
are read, NaN in them is found, and what no reader interprets is listed as unread (and fails
the gate under ``--strict``).

Real models saved by the real Keras writers; files altered with h5py, always in a copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from pytest_kerasmodel import describe_artifact, read_optimizer_weights, read_weights


@pytest.fixture(scope="module")
def attribute_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The issue's model: ``self.d1 = ScaledDense(8)`` beside a ``Dense``, trained one step,
    saved as .keras and .weights.h5."""
    import keras
    from builders.accounting_models import ScaledDense
    from builders.roundtrip_models import train_one_step

    @keras.saving.register_keras_serializable(package="kerasmodel_tests_accounting")
    class AttributeModel(keras.Model):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.d1 = ScaledDense(8)
            self.dense = keras.layers.Dense(3)

        def call(self, x: Any) -> Any:
            return self.dense(self.d1(x))

    model = AttributeModel()
    model(np.zeros((1, 4), "float32"))
    train_one_step(model)
    folder = tmp_path_factory.mktemp("attribute")
    files = {"keras": folder / "m.keras", "weights": folder / "m.weights.h5"}
    model.save(files["keras"])
    model.save_weights(files["weights"])
    return {"model": model, "files": files, "folder": folder}


@pytest.mark.parametrize("fmt", ["keras", "weights"])
def test_attribute_layers_are_counted_and_read(attribute_model: dict[str, Any], fmt: str) -> None:
    model, path = attribute_model["model"], attribute_model["files"][fmt]
    d = describe_artifact(path)
    assert model.count_params() == 67
    assert d["params"] == model.count_params()
    assert d["unread"] == []
    assert d["weight_paths"]["scaled_dense/0"] == "d1/vars/0"
    with read_weights(path) as weights:
        read = sorted((w.shape, np.asarray(w).tobytes()) for w in weights.values())
    expected = sorted((tuple(v.shape), np.asarray(v).tobytes()) for v in model.weights)
    assert read == expected
    with read_optimizer_weights(path) as opt:
        got = [np.asarray(v) for v in opt.values()]
    want = [np.asarray(v) for v in model.optimizer.variables]
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_inspect_counts_attribute_layers(attribute_model: dict[str, Any]) -> None:
    out = _cli("inspect", str(attribute_model["files"]["keras"]))
    assert "parameters:     67 in 4 saved variable(s)" in out.stdout
    assert "unread:         nothing" in out.stdout


def test_nan_in_attribute_layer_is_found(attribute_model: dict[str, Any], tmp_path: Path) -> None:
    from builders.accounting_models import plant_nan

    for source in attribute_model["files"].values():
        broken = tmp_path / source.name
        plant_nan(source, broken, "d1/vars/0")
        d = describe_artifact(broken, scan_values=True)
        assert d["values"]["scaled_dense/0"] == {"nan": 1, "inf": 0}
        assert [k for k, v in d["values"].items() if v["nan"]] == ["scaled_dense/0"]
        assert "weight scaled_dense/0 holds 1 NaN and 0 infinite value(s)" in d["notes"]

    scan = _cli("inspect", "--scan-values", str(tmp_path / "m.keras"))
    assert "1 with NaN or infinite values" in scan.stdout
    # one gate run over both broken files: each fails finite, naming the variable
    gate = _cli("gate", "--checks", "integrity,finite", str(tmp_path), check=False)
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert gate.stdout.count("  - scaled_dense/0: 1 NaN of 32 values") == 2, gate.stdout


def test_unread_dataset_is_listed_and_fails_strict(
    attribute_model: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "m.weights.h5"
    shutil.copyfile(attribute_model["files"]["weights"], path)
    with h5py.File(path, "r+") as f:
        f["extra/blob"] = np.array([1.0, np.inf], "float32")
        f["d1/vars"].attrs["note"] = "hello"
    d = describe_artifact(path, scan_values=True)
    assert d["params"] == 67  # an unread dataset is no parameter
    unread = {u["path"]: u for u in d["unread"]}
    assert set(unread) == {"/extra/blob", "/d1/vars@note"}
    assert unread["/extra/blob"]["shape"] == [2]
    assert "not a saved variable" in unread["/extra/blob"]["reason"]
    assert unread["/d1/vars@note"]["kind"] == "attribute"
    # the finite scan reads it although no reader interprets it
    assert d["values"]["/extra/blob"] == {"nan": 0, "inf": 1}

    out = _cli("inspect", "--json", str(path))
    assert {u["path"] for u in json.loads(out.stdout)["unread"]} == set(unread)
    text = _cli("inspect", str(path)).stdout
    assert "unread:         2 dataset(s) or attribute(s) not interpreted:" in text
    assert "/extra/blob (2,) float32: not a saved variable" in text

    report = tmp_path / "report.json"
    gate = _cli(
        "gate", "--checks", "integrity,finite", "--json", str(report), str(path), check=False
    )
    checks = json.loads(report.read_text())["artifacts"][0]["checks"]
    assert checks["integrity"]["status"] == "passed", gate.stdout + gate.stderr
    message = checks["integrity"]["message"]
    assert "not interpreted (2; --keras-strict fails it): /d1/vars@note" in message
    assert "/extra/blob (not a saved variable" in message
    # the finite check fails on the Inf in the dataset no reader interprets
    assert checks["finite"]["status"] == "failed"
    assert "/extra/blob: 1 Inf of 2 values" in checks["finite"]["message"]
    strict = _cli("gate", "--checks", "integrity", "--strict", str(path), check=False)
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "2 dataset(s) or attribute(s) that no reader interpreted (--keras-strict)" in (
        strict.stdout
    )


def test_legacy_h5_unread_and_optimizer_nan(tmp_path: Path) -> None:
    """Legacy HDF5: a dataset no ``weight_names`` lists is unread; a NaN in an optimizer slot
    is found by the finite scan."""
    import keras
    from builders.roundtrip_models import train_one_step

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="hidden")(inputs))
    train_one_step(model)
    path = tmp_path / "m.h5"
    model.save(path)
    d = describe_artifact(path)
    assert d["params"] == model.count_params()
    assert d["unread"] == []
    broken = tmp_path / "broken.h5"
    shutil.copyfile(path, broken)
    with h5py.File(broken, "r+") as f:
        slot = next(
            name
            for name in _datasets(f["optimizer_weights"])
            if f["optimizer_weights"][name].ndim == 2
        )
        value = f["optimizer_weights"][slot][()]
        value[0, 0] = np.nan
        f["optimizer_weights"][slot][()] = value
        f["model_weights/hidden/stray"] = np.zeros(2, "float32")
    d = describe_artifact(broken, scan_values=True)
    assert [u["path"] for u in d["unread"]] == ["/model_weights/hidden/stray"]
    bad = [k for k, v in d["values"].items() if v["nan"]]
    assert len(bad) == 1 and bad[0].startswith("optimizer/"), d["values"]


def test_tf_keras_metric_state_is_interpreted(tmp_path: Path) -> None:
    """tf.keras saves its compiled metrics in ``.keras`` (``metrics/<metric>/vars/<i>``):
    metric variables, not parameters."""
    script = f"""
import numpy as np, tf_keras as k
i = k.Input((3,)); m = k.Model(i, k.layers.Dense(2)(k.layers.Dense(4)(i)))
m.compile("adam", "mse", metrics=["mae"]); m.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
m.save({str(tmp_path / "m.keras")!r}); print(m.count_params())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    d = describe_artifact(tmp_path / "m.keras")
    assert d["params"] == int(out.stdout.split()[-1])
    assert d["unread"] == []
    assert len(d["metric_variables"]) == 4
    assert all(name.startswith("metrics/") for name in d["metric_variables"])


def _datasets(group: Any) -> list[str]:
    found: list[str] = []
    group.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) else None)
    return found


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "pytest_kerasmodel", *args], capture_output=True, text=True
    )
    if check:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_resaved_unnamed_variables_match_by_layer_and_order(tmp_path: Path) -> None:
    """A layer's unnamed ``add_weight`` (as ConvNeXt's ``LayerScale``) gets a name Keras
    numbers process-wide (``variable_17``); reloading and re-saving the same model as legacy
    ``.h5`` renumbers it. The file comparison matches it by owning layer and creation order."""
    import keras
    from builders.accounting_models import ScaledDense

    from pytest_kerasmodel import artifacts_diff, assert_artifacts_match

    inputs = keras.Input((3,))
    hidden = ScaledDense(3, counter=True, name="scale_a")(inputs)
    model = keras.Model(inputs, ScaledDense(2, name="scale_b")(hidden))
    first = tmp_path / "first.h5"
    model.save(first)
    ScaledDense(4).build((None, 4))  # more unnamed variables: the process-wide number moves on
    reloaded = keras.saving.load_model(first, compile=False)
    second = tmp_path / "second.h5"
    reloaded.save(second)
    with h5py.File(first) as f, h5py.File(second) as g:
        recorded = [
            sorted(_datasets(h["model_weights/scale_a"])) for h in (f, g)
        ]  # Keras's own names differ between the two files
    assert recorded[0] != recorded[1], recorded

    names = describe_artifact(second)["weights"]
    assert "scale_a/variable#0" in names and "scale_a/variable#1" in names
    assert "scale_a/scale" in names
    diff = artifacts_diff(first, second)
    assert diff.structure == [] and diff.weights == [], diff.render()
    assert diff.weights_compared == 5
    assert_artifacts_match(first, second)
    out = _cli("diff", str(first), str(second), check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_sharded_weights_of_attribute_layers(
    attribute_model: dict[str, Any], tmp_path: Path
) -> None:
    """Sharded weights (a ``.weights.json`` manifest and its shards): the attribute layers
    counted, a NaN in one shard found, a stray dataset listed under its shard's name."""
    model = attribute_model["model"]
    manifest = tmp_path / "m.weights.json"
    model.save_weights(manifest, max_shard_size=2e-7)
    shards = sorted(tmp_path.glob("*.weights.h5"))
    assert len(shards) > 1
    d = describe_artifact(manifest)
    assert d["params"] == model.count_params()
    assert d["unread"] == []
    holder = next(s for s in shards if "d1" in h5py.File(s))
    with h5py.File(holder, "r+") as f:
        value = f["d1/vars/0"][()]
        value[0, 0] = np.nan
        f["d1/vars/0"][()] = value
        f["stray"] = np.zeros(3, "float32")
    d = describe_artifact(manifest, scan_values=True)
    assert d["values"]["scaled_dense/0"]["nan"] == 1
    assert [u["path"] for u in d["unread"]] == [f"{holder.name}:/stray"]
    assert d["values"][f"{holder.name}:/stray"] == {"nan": 0, "inf": 0}
