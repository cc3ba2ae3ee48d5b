"""describe_artifact: a plain, deterministic, JSON-serialisable description of every format."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from builders.describe_artifacts import TINY_WEIGHTS

from pytest_kerasmodel import describe_artifact
from pytest_kerasmodel.structure.describe import render_description, summarise

TINY_LAYERS = [
    ("x", "InputLayer", 0),
    ("hidden", "Dense", 28),
    ("bn", "BatchNormalization", 16),
    ("reshape", "Reshape", 0),
    ("bi", "Bidirectional", 144),
    ("out", "Dense", 12),
]


def _shapes(description: dict) -> dict[str, list[int]]:
    return {name: w["shape"] for name, w in description["weights"].items()}


@pytest.mark.parametrize("key", ["keras", "h5", "weights.h5"])
def test_keras3_description(keras3_files: dict[str, Path], key: str) -> None:
    import keras

    d = describe_artifact(keras3_files[key])
    assert d["format"] == key
    assert d["file"] == keras3_files[key].name
    assert d["file_size"] == keras3_files[key].stat().st_size
    assert _shapes(d) == TINY_WEIGHTS
    assert {w["dtype"] for w in d["weights"].values()} == {"float32"}
    assert d["params"] == 200
    assert len(d["optimizer"]["variables"]) == 24
    assert d["notes"] == []
    if key == "weights.h5":  # no config, no version: layers known by their recorded names
        assert d["keras_version"] is None and d["model"] is None
        assert d["optimizer"]["class_name"] == "adam"
        assert sorted((la["name"], la["class_name"], la["params"]) for la in d["layers"]) == sorted(
            (n, None, p) for n, _, p in TINY_LAYERS
        )
    else:
        assert d["keras_version"] == keras.__version__
        assert d["model"] == {"class_name": "Functional", "name": "tiny"}
        assert d["optimizer"]["class_name"] in ("Adam", "adam")
        assert [(la["name"], la["class_name"], la["params"]) for la in d["layers"]] == TINY_LAYERS


def test_keras2_description(tf_keras_files: dict[str, Path]) -> None:
    d = describe_artifact(tf_keras_files["h5"])
    assert (d["format"], d["keras_version"], d["backend"]) == ("h5", "2.21.0", "tensorflow")
    assert _shapes(d) == TINY_WEIGHTS
    assert d["weight_paths"]["hidden/kernel"] == "model_weights/hidden/hidden/kernel:0"
    weights_only = describe_artifact(tf_keras_files["h5-weights"])
    assert weights_only["format"] == "h5-weights"
    assert weights_only["weights"] == d["weights"]


def test_weights_are_identical_across_formats(
    keras3_files: dict[str, Path], tf_keras_files: dict[str, Path]
) -> None:
    keras_zip = describe_artifact(keras3_files["keras"])
    others = [keras3_files["h5"], keras3_files["weights.h5"]]
    others += [tf_keras_files[k] for k in ("keras", "h5", "h5-weights")]
    for path in others:
        assert describe_artifact(path)["weights"] == keras_zip["weights"], path.name


def test_compressed_inner_weights_are_read_and_noted(
    keras3_files: dict[str, Path], tmp_path: Path
) -> None:
    # Keras stores model.weights.h5 uncompressed; a re-zipped archive is still described.
    path = tmp_path / "deflated.keras"
    with (
        zipfile.ZipFile(keras3_files["keras"]) as src,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    d = describe_artifact(path)
    assert d["weights"] == describe_artifact(keras3_files["keras"])["weights"]
    assert d["notes"] == ["model.weights.h5 is compressed; Keras stores it uncompressed"]
    assert {m["method"] for m in d["zip"]} == {"deflated"}


def test_description_is_deterministic_and_json(keras3_files: dict[str, Path]) -> None:
    for path in keras3_files.values():
        first = describe_artifact(path)
        assert json.loads(json.dumps(first)) == first
        assert describe_artifact(path) == first


def test_describing_an_opened_artifact_equals_describing_the_path(
    keras3_files: dict[str, Path],
) -> None:
    from pytest_kerasmodel.artifacts import open_artifact

    for path in keras3_files.values():
        with open_artifact(path) as opened:
            shared = describe_artifact(opened, scan_values=True)
        assert shared == describe_artifact(path, scan_values=True)


def test_keras_zip_members_and_inner_tree(keras3_files: dict[str, Path]) -> None:
    d = describe_artifact(keras3_files["keras"])
    assert [(m["name"], m["method"]) for m in d["zip"]] == [
        ("metadata.json", "stored"),
        ("config.json", "stored"),
        ("model.weights.h5", "stored"),
    ]
    assert d["hdf5"]["layers/dense/vars/0"] == {
        "kind": "dataset",
        "shape": [6, 4],
        "dtype": "float32",
        "attrs": {},
    }
    assert d["hdf5"]["layers/dense/vars"]["attrs"] == {"name": "hidden"}
    assert "date_saved" in d["metadata"]


def test_long_attributes_are_summarised(keras3_files: dict[str, Path]) -> None:
    root = describe_artifact(keras3_files["h5"])["hdf5"][""]
    assert root["attrs"]["model_config"].startswith("<text of ")
    assert "sha256" in root["attrs"]["model_config"]
    assert summarise(np.array([b"a", b"b"])) == ["a", "b"]
    assert summarise(np.arange(100)).startswith("<array of 100 items, sha256 ")
    assert summarise(np.float32(1.5)) == 1.5


def test_scan_values_counts_nan_and_inf(keras3_files: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "bad.weights.h5"
    shutil.copy(keras3_files["weights.h5"], path)
    with h5py.File(path, "r+") as f:
        kernel = f["layers/dense/vars/0"]
        values = kernel[()]
        values[0, 0], values[1, 1], values[2, 2] = np.nan, np.inf, -np.inf
        kernel[...] = values
    plain = describe_artifact(path)
    assert plain["values"] is None and plain["notes"] == []  # metadata only by default
    scanned = describe_artifact(path, scan_values=True)
    assert scanned["values"]["hidden/kernel"] == {"nan": 1, "inf": 2}
    assert scanned["values"]["hidden/bias"] == {"nan": 0, "inf": 0}
    assert scanned["notes"] == ["weight hidden/kernel holds 1 NaN and 2 infinite value(s)"]


def test_render_description_names_the_essentials(keras3_files: dict[str, Path]) -> None:
    text = render_description(describe_artifact(keras3_files["keras"]))
    assert "format:         keras: .keras zip archive" in text
    assert "model:          Functional 'tiny'" in text
    assert "optimizer:      Adam, 24 saved variable(s)" in text
    assert "      recurrent_kernel" not in text  # Bidirectional variables keep their direction
    assert "      forward/recurrent_kernel" in text
    assert "unusual:        nothing" in text


def test_describing_imports_neither_keras_nor_tensorflow(keras3_files: dict[str, Path]) -> None:
    # A fresh interpreter: this test process has Keras loaded already.
    code = (
        "import sys, json\n"
        "from pytest_kerasmodel import describe_artifact, assert_h5_structure\n"
        "from pytest_kerasmodel.structure.describe import render_description\n"
        "for p in sys.argv[1:]:\n"
        "    d = describe_artifact(p, scan_values=True)\n"
        "    render_description(d)\n"
        "    assert_h5_structure(p, d, exact=True)\n"
        "heavy = [m for m in ('keras', 'tensorflow', 'tf_keras') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, keras3_files.values())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "HEAVY="


@pytest.mark.parametrize("dtype", ["<f2", "<f4", ">f4", "<f8", "<c8"])
def test_count_nonfinite_across_blocks(
    dtype: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks read into one shared buffer: NaN and Inf counted exactly in whichever block holds
    them, huge finite values (whose sum overflows) not counted, and tiny / scalar / empty
    datasets handled."""
    from pytest_kerasmodel.structure import describe

    monkeypatch.setattr(describe, "_SCAN_BLOCK_BYTES", 4 * 5 * 16)  # a few rows per block
    big = np.finfo(np.dtype(dtype).type(0).real.dtype).max
    data = np.ones((37, 5), dtype=dtype)
    data[0, :] = big  # finite, but any block sum overflows
    data[3, 1] = np.nan
    data[20, 0] = np.inf
    data[20, 4] = -np.inf
    data[36, 2] = np.nan
    huge = np.full((9, 5), big, dtype=dtype)
    with h5py.File(tmp_path / "values.h5", "w") as f:
        f.create_dataset("data", data=data)
        f.create_dataset("huge", data=huge)
        f.create_dataset("scalar", data=np.array(np.nan, dtype=dtype))
        f.create_dataset("empty", shape=(0, 5), dtype=dtype)
        f.create_dataset("ints", data=np.arange(10))
        f.create_dataset("nothing", data=h5py.Empty(dtype))  # no dataspace, no values
    with h5py.File(tmp_path / "values.h5", "r") as f:
        scratch = np.empty(7, dtype=np.uint8)  # too small: replaced, not overrun
        assert describe.count_nonfinite(f["data"], scratch) == (2, 2)
        assert describe.count_nonfinite(f["data"]) == (2, 2)
        assert describe.count_nonfinite(f["data"].id, scratch) == (2, 2)  # a low-level DatasetID
        assert describe.count_nonfinite(f["huge"]) == (0, 0)
        assert describe.count_nonfinite(f["scalar"]) == (1, 0)
        assert describe.count_nonfinite(f["empty"]) == (0, 0)
        assert describe.count_nonfinite(f["ints"]) == (0, 0)
        assert describe.count_nonfinite(f["nothing"]) == (0, 0)
