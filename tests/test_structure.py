"""assert_h5_structure: the three forms of `expected`, passing and failing, and the tree diff."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from pytest_kerasmodel import StructureError, assert_h5_structure, describe_artifact
from pytest_kerasmodel.golden import golden_document, write_json_atomic
from pytest_kerasmodel.structure.expected import StructureDiff, structure_view


@pytest.fixture(scope="module")
def widened(keras3_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's .weights.h5 with the `out` kernel widened to (6, 3)."""
    path = tmp_path_factory.mktemp("widened") / "tiny.weights.h5"
    shutil.copy(keras3_files["weights.h5"], path)
    with h5py.File(path, "r+") as f:
        del f["layers/dense_1/vars/0"]
        f["layers/dense_1/vars/0"] = np.zeros((6, 3), "float32")
    return path


# ---- a description ------------------------------------------------------------------------------


def test_description_of_the_same_file_passes(keras3_files: dict[str, Path]) -> None:
    for path in keras3_files.values():
        assert_h5_structure(path, describe_artifact(path), exact=True)


def test_description_of_a_changed_file_fails_with_a_tree_diff(
    keras3_files: dict[str, Path], widened: Path
) -> None:
    expected = describe_artifact(keras3_files["weights.h5"])
    with pytest.raises(StructureError) as info:
        assert_h5_structure(widened, expected)
    diff = info.value.diff
    assert isinstance(diff, StructureDiff)
    assert [(c.level, c.op, c.path, c.what) for c in diff.changes] == [
        ("keras", "~", "out/kernel", "shape"),
        ("hdf5", "~", "/layers/dense_1/vars/0", "shape"),
    ]
    text = str(info.value)
    assert "1 difference" not in text and "2 difference(s)" in text
    assert (
        "Keras level (layer/variable):\n    out/\n  ~   kernel: shape (6, 3) (expected (6, 2))"
        in (text)
    )
    assert "HDF5 level (path):" in text and "  ~       0: shape (6, 3) (expected (6, 2))" in text
    assert json.loads(diff.to_json())["changes"][0]["actual"] == [6, 3]


def test_same_model_in_another_format_differs_only_in_layout(
    keras3_files: dict[str, Path],
) -> None:
    # The Keras-level view is equal across formats: only the format and HDF5 layout differ.
    with pytest.raises(StructureError) as info:
        assert_h5_structure(
            keras3_files["keras"], describe_artifact(keras3_files["h5"]), exact=True
        )
    levels = {c.level for c in info.value.diff.changes}
    assert levels == {"model", "hdf5"}
    text = str(info.value)
    assert "- model_weights: missing (expected group with" in text
    assert "+ layers: unexpected group with" in text


def test_golden_json_path_passes_and_fails(
    keras3_files: dict[str, Path], widened: Path, tmp_path: Path
) -> None:
    golden = tmp_path / "tiny.golden.json"
    view = structure_view(describe_artifact(keras3_files["weights.h5"]))
    write_json_atomic(golden, golden_document("structure", {"tiny": view}))
    assert_h5_structure(keras3_files["weights.h5"], golden, exact=True)
    assert_h5_structure(keras3_files["weights.h5"], str(golden))
    with pytest.raises(StructureError, match=r"structure differs from golden .*tiny\.golden\.json"):
        assert_h5_structure(widened, golden)
    bare = tmp_path / "description.json"  # what `inspect --json` prints is accepted as well
    bare.write_text(json.dumps(describe_artifact(keras3_files["weights.h5"])))
    assert_h5_structure(keras3_files["weights.h5"], bare, exact=True)


# ---- a mapping from path pattern to shape -----------------------------------------------------


def test_path_mapping_with_wildcards_passes(keras3_files: dict[str, Path]) -> None:
    assert_h5_structure(
        keras3_files["h5"],
        {
            "model_weights/hid*/*/kernel*": (6, 4),
            "/model_weights/bn/bn/moving_*": [4],
            "optimizer_weights": None,
        },
    )
    # Keras-level names work when no HDF5 path matches
    assert_h5_structure(keras3_files["keras"], {"bi/*/recurrent_kernel": (3, 12)})


def test_path_mapping_reports_missing_and_wrong_shapes(keras3_files: dict[str, Path]) -> None:
    with pytest.raises(StructureError) as info:
        assert_h5_structure(
            keras3_files["h5"],
            {"model_weights/hidden/hidden/kernel": (6, 5), "model_weights/nothing*": None},
        )
    assert [(c.op, c.path, c.what) for c in info.value.diff.changes] == [
        ("~", "/model_weights/hidden/hidden/kernel", "shape"),
        ("-", "/model_weights/nothing*", "missing"),
    ]
    assert "kernel: shape (6, 4) (expected (6, 5))" in str(info.value)


def test_exact_mapping_reports_unexpected_datasets(keras3_files: dict[str, Path]) -> None:
    everything = {p: None for p in describe_artifact(keras3_files["keras"])["hdf5"] if p}
    assert_h5_structure(keras3_files["keras"], everything, exact=True)
    partial = {"layers/dense/vars/*": None}
    assert_h5_structure(keras3_files["keras"], partial)  # not exact: the rest may exist
    with pytest.raises(StructureError) as info:
        assert_h5_structure(keras3_files["keras"], partial, exact=True)
    unexpected = [c.path for c in info.value.diff.changes if c.op == "+"]
    assert "/layers/dense_1/vars/0" in unexpected and "/layers/dense/vars/0" not in unexpected


def test_long_diffs_are_capped_with_a_count(keras3_files: dict[str, Path]) -> None:
    with pytest.raises(StructureError) as info:
        assert_h5_structure(keras3_files["keras"], {"layers/dense/vars/0": None}, exact=True)
    diff = info.value.diff
    total = len(diff.changes)
    assert total == 36  # every other dataset of the archive's weights file is unexpected
    assert "more difference(s) not shown" not in str(info.value)  # 40 are shown by default
    text = diff.render(max_shown=5)
    assert sum(line.lstrip().startswith("+ ") for line in text.splitlines()) == 5
    assert text.endswith(
        f"... and {total - 5} more difference(s) not shown (see StructureError.diff)"
    )


# ---- a list of paths --------------------------------------------------------------------------


def test_path_list_passes_and_fails(keras3_files: dict[str, Path]) -> None:
    assert_h5_structure(keras3_files["keras"], ["layers/dense*/vars/0", "optimizer/vars/*"])
    with pytest.raises(StructureError) as info:
        assert_h5_structure(keras3_files["keras"], ["layers/dense/vars/0", "layers/conv2d"])
    assert [(c.op, c.path) for c in info.value.diff.changes] == [("-", "/layers/conv2d")]
    assert "    layers/\n  -   conv2d: missing" in str(info.value)


def test_unsupported_expected_is_a_type_error(keras3_files: dict[str, Path]) -> None:
    with pytest.raises(TypeError, match="expected must be a description"):
        assert_h5_structure(keras3_files["keras"], 42)
