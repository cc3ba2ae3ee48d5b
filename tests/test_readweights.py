"""read_weights / read_optimizer_weights: a model file's weights by Keras name, without Keras.

Every format and layout the gate reads, each written by the real Keras (or tf-keras, or
KerasHub) writer, each compared with the values the real Keras loads from the same file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from pytest_kerasmodel import ArtifactError, describe_artifact, read_optimizer_weights, read_weights


def keras_named(model: Any) -> dict[str, np.ndarray]:
    """The model's variables under the names read_weights gives, from the loaded model itself:
    ``<layer>/<variable>``, ``<bidirectional>/forward/<variable>``, ``<nested>/<sub>/<var>``."""

    def short(variable: Any) -> str:
        return str(variable.name).split("/")[-1].split(":")[0]

    named: dict[str, np.ndarray] = {}
    for layer in model.layers:
        if hasattr(layer, "forward_layer"):
            for side in ("forward", "backward"):
                for v in getattr(layer, f"{side}_layer").weights:
                    named[f"{layer.name}/{side}/{short(v)}"] = np.asarray(v)
        elif hasattr(layer, "layers"):
            for sub in layer.layers:
                for v in sub.weights:
                    named[f"{layer.name}/{sub.name}/{short(v)}"] = np.asarray(v)
        else:
            for v in layer.weights:
                named[f"{layer.name}/{short(v)}"] = np.asarray(v)
    return named


def assert_same_arrays(read: Any, expected: dict[str, np.ndarray]) -> None:
    assert sorted(read) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(read[name], value, err_msg=name)
        assert read[name].dtype == value.dtype, name


@pytest.fixture(scope="module")
def keras3_loaded(keras3_files: dict[str, Path]) -> dict[str, Any]:
    import keras

    return {
        "tiny": keras.saving.load_model(keras3_files["keras"]),
        "rich": keras.saving.load_model(keras3_files["rich.keras"]),
    }


@pytest.mark.parametrize(
    ("key", "model"),
    [
        ("keras", "tiny"),
        ("h5", "tiny"),
        ("weights.h5", "tiny"),
        ("rich.keras", "rich"),
        ("rich.h5", "rich"),
        ("rich.weights.h5", "rich"),
    ],
)
def test_keras3_formats_read_what_keras_loads(
    keras3_files: dict[str, Path], keras3_loaded: dict[str, Any], key: str, model: str
) -> None:
    import keras

    path = keras3_files[key]
    if key.endswith("weights.h5"):  # into a fresh copy of the architecture
        loaded = keras.models.clone_model(keras3_loaded[model])
        loaded.load_weights(path)
    else:
        # compile=False: Keras 3.15 cannot rebuild the compiled loss of its own legacy .h5
        # ("Could not deserialize 'keras.metrics.mse'"); the weights are what this is about
        loaded = keras.saving.load_model(path, compile=False)
    with read_weights(path) as weights:
        assert_same_arrays(weights, keras_named(loaded))
        assert set(weights) == set(describe_artifact(path)["weights"])
        assert weights.info["hidden/kernel" if model == "tiny" else "emb/embeddings"].shape


@pytest.mark.parametrize("key", ["h5", "h5-weights", "keras", "rich.h5", "rich.keras"])
def test_tf_keras_formats_read_what_tf_keras_loads(
    tf_keras_files: dict[str, Path], key: str
) -> None:
    import tf_keras

    path = tf_keras_files[key]
    if key == "h5-weights":
        loaded = tf_keras.models.load_model(tf_keras_files["h5"])
        loaded.load_weights(path)
    else:
        loaded = tf_keras.models.load_model(path)
    with read_weights(path) as weights:
        assert_same_arrays(weights, keras_named(loaded))


@pytest.mark.parametrize("key", ["mlp.keras", "mlp.weights.h5", "mlp_dir", "sharded"])
def test_layouts_read_what_keras_loads(layout_files: dict[str, Path], key: str) -> None:
    import keras

    path = layout_files[key]
    if key == "sharded":
        path = path / "w.weights.json"
    model = keras.saving.load_model(layout_files["mlp.keras"])
    if key == "mlp_dir":
        model = keras.saving.load_model(path)  # Keras reads the unzipped folder itself
    elif key != "mlp.keras":
        model = keras.models.clone_model(model)
        model.load_weights(path)
    with read_weights(path) as weights:
        assert_same_arrays(weights, keras_named(model))
        assert list(weights) == ["hidden/kernel", "hidden/bias", "out/kernel", "out/bias"]


@pytest.mark.parametrize("key", ["backbone_preset", "sharded_preset", "task_preset"])
def test_presets_read_the_backbone_keras_loads(preset_files: dict[str, Path], key: str) -> None:
    import keras_hub

    backbone = keras_hub.models.Backbone.from_preset(str(preset_files[key]))
    with (
        read_weights(preset_files[key]) as weights,
        read_weights(preset_files["backbone.keras"]) as saved,
    ):
        assert list(weights) == list(saved)
        for name in saved:
            np.testing.assert_array_equal(weights[name], saved[name], err_msg=name)
        # every array Keras loaded, exactly once (names of nested layers aside)
        loaded = sorted(np.asarray(v).tobytes() for v in backbone.weights)
        assert sorted(weights[n].tobytes() for n in weights) == loaded


def test_optimizer_weights_are_what_keras_restores(keras3_files: dict[str, Path]) -> None:
    import keras

    model = keras.saving.load_model(keras3_files["keras"])
    expected = [np.asarray(v) for v in model.optimizer.variables]
    for key in ("keras", "h5", "weights.h5"):
        with read_optimizer_weights(keras3_files[key]) as opt:
            assert list(opt) == [f"optimizer/{i}" for i in range(len(expected))], key
            for i, value in enumerate(expected):
                np.testing.assert_array_equal(opt[f"optimizer/{i}"], value, err_msg=key)


def test_nothing_is_read_until_asked(keras3_files: dict[str, Path], tmp_path: Path) -> None:
    # The values are read when asked for, not when the file is opened: bytes changed on disk
    # after read_weights opened the file are the bytes it returns.
    path = tmp_path / "tiny.h5"
    path.write_bytes(keras3_files["h5"].read_bytes())
    with h5py.File(path, "r") as f:
        dataset = f["model_weights/hidden/hidden/kernel"]
        offset, nbytes = dataset.id.get_offset(), dataset.id.get_storage_size()
    assert offset is not None and nbytes == 6 * 4 * 4  # contiguous float32 (6, 4)
    with read_weights(path) as weights:
        assert weights.info["hidden/kernel"].shape == (6, 4)
        assert weights.info["hidden/kernel"].dtype == "float32"
        with open(path, "r+b") as fh:
            fh.seek(offset)
            fh.write(np.full((6, 4), 7.0, dtype="<f4").tobytes())
        np.testing.assert_array_equal(weights["hidden/kernel"], np.full((6, 4), 7.0))
        assert repr(weights) == f"<ArtifactWeights {str(path)!r}: 13 weights (h5)>"
        with pytest.raises(KeyError):
            weights["no/such"]
    with pytest.raises(ValueError, match="closed"):
        weights["hidden/kernel"]


def test_read_weights_never_imports_keras(keras3_files: dict[str, Path]) -> None:
    code = (
        "import sys\n"
        "from pytest_kerasmodel import read_weights\n"
        f"w = read_weights({str(keras3_files['keras'])!r})\n"
        "print(float(w['hidden/kernel'].sum()))\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[-1] == "[]"


def test_what_cannot_be_read_is_refused_naming_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "model.keras"
    garbage.write_bytes(b"not a model at all\n" * 10)
    with pytest.raises(ArtifactError, match=r"model\.keras: format: neither HDF5 nor zip"):
        read_weights(garbage)
    saved_model = tmp_path / "sm"
    (saved_model / "variables").mkdir(parents=True)
    (saved_model / "saved_model.pb").write_bytes(b"\x08\x01")
    with pytest.raises(ArtifactError, match=r"sm: weights: a TensorFlow SavedModel directory"):
        read_weights(saved_model)
