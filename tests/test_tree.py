"""The HDF5 tree explained (``describe_artifact(...)["tree"]``, ``kerasmodel inspect --tree``,
``--json``): every group, dataset and attribute of every layout and era has a meaning, every
saved variable is named as the Keras weight it is, and the optimizer slots are attributed to
the weight Keras itself says they belong to."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_kerasmodel import describe_artifact
from pytest_kerasmodel.structure.tree import NOT_INTERPRETED, explain_tree, render_tree

REALWORLD = Path("/work/shared/realworld")


def _by_path(path: Path) -> dict[str, dict[str, Any]]:
    return {node["path"]: node for node in describe_artifact(path)["tree"]}


def _accounted(description: dict[str, Any]) -> None:
    """Every object and attribute of the hdf5 listing is one node, every weight is named."""
    tree = description["tree"]
    hdf5 = description["hdf5"] or {}
    objects = [n for n in tree if n["kind"] != "attribute"]
    assert sorted(n["path"] for n in objects) == sorted(hdf5)
    attributes = sum(len(node.get("attrs") or {}) for node in hdf5.values())
    assert len(tree) - len(objects) == attributes
    assert all(n["meaning"] for n in tree)
    named = {n["weight"]: n["path"] for n in tree if n["weight"]}
    assert named == {w: p for w, p in description["weight_paths"].items()}
    for node in tree:
        if node["weight"]:
            assert node["meaning"].startswith(f"variable {node['weight']!r}"), node


@pytest.mark.parametrize("fmt", ["keras", "h5", "weights.h5", "rich.keras", "rich.h5"])
def test_keras3_files_are_accounted_for(keras3_files: dict[str, Path], fmt: str) -> None:
    _accounted(describe_artifact(keras3_files[fmt]))


@pytest.mark.parametrize("fmt", ["h5", "h5-weights", "keras", "rich.h5"])
def test_tf_keras_files_are_accounted_for(tf_keras_files: dict[str, Path], fmt: str) -> None:
    _accounted(describe_artifact(tf_keras_files[fmt]))


@pytest.mark.parametrize("name", ["mlp_dir", "sharded/w.weights.json", "mlp.weights.h5"])
def test_folders_and_shards_are_accounted_for(layout_files: dict[str, Path], name: str) -> None:
    first, _, rest = name.partition("/")
    description = describe_artifact(layout_files[first] / rest if rest else layout_files[first])
    _accounted(description)
    assert description["tree"], name


def test_a_preset_is_accounted_for(preset_files: dict[str, Path]) -> None:
    description = describe_artifact(preset_files["backbone_preset"])
    _accounted(description)
    sharded = describe_artifact(preset_files["sharded_preset"])
    _accounted(sharded)
    meanings = {n["path"]: n["meaning"] for n in sharded["tree"]}
    assert meanings == {n["path"]: n["meaning"] for n in description["tree"]}


def test_legacy_h5_of_keras3_says_what_h5py_shows(keras3_files: dict[str, Path]) -> None:
    tree = _by_path(keras3_files["h5"])
    assert tree["model_weights/hidden/hidden/kernel"]["meaning"] == (
        "variable 'hidden/kernel' of layer 'hidden' (Dense), shape [6, 4]"
    )
    assert tree["model_weights/hidden"]["meaning"].startswith("layer 'hidden' (Dense)")
    assert "the layer's name again" in tree["model_weights/hidden/hidden"]["meaning"]
    assert "name scope" in tree["model_weights/hidden/hidden"]["meaning"]
    assert "outside any layer" in tree["model_weights/top_level_model_weights"]["meaning"]
    assert tree["optimizer_weights/adam/hidden_kernel_momentum"]["meaning"] == (
        "optimizer slot 'momentum' of weight 'hidden/kernel'"
    )
    # Keras names the Bidirectional's inner layer forward_lstm, forward_lstm_1, ... by how many
    # LSTMs the process built before: the slot's path follows it
    (velocity,) = [
        p
        for p in tree
        if re.fullmatch(
            r"optimizer_weights/adam/bi_forward_lstm(_\d+)?_lstm_cell_kernel_velocity", p
        )
    ]
    assert tree[velocity]["meaning"] == "optimizer slot 'velocity' of weight 'bi/forward/kernel'"
    assert "step counter" in tree["optimizer_weights/adam/iteration"]["meaning"]
    assert "Keras version" in tree["@keras_version"]["meaning"]
    assert "backend" in tree["model_weights@backend"]["meaning"]
    assert "in this order" in tree["model_weights@layer_names"]["meaning"]
    assert "by position" in tree["model_weights/hidden@weight_names"]["meaning"]
    assert "architecture" in tree["@model_config"]["meaning"]


def test_tf_keras_h5_names_its_slots(tf_keras_files: dict[str, Path]) -> None:
    tree = _by_path(tf_keras_files["h5"])
    assert tree["model_weights/hidden/hidden/kernel:0"]["weight"] == "hidden/kernel"
    assert tree["optimizer_weights/Adam/m/hidden/kernel:0"]["meaning"] == (
        "optimizer slot 'm' of weight 'hidden/kernel'"
    )
    assert tree["optimizer_weights/Adam/v/bn/gamma:0"]["meaning"] == (
        "optimizer slot 'v' of weight 'bn/gamma'"
    )
    weights_only = _by_path(tf_keras_files["h5-weights"])
    assert "weights-only" in weights_only[""]["meaning"]
    assert weights_only["hidden/hidden/kernel:0"]["weight"] == "hidden/kernel"
    assert "the layer's name again" in weights_only["hidden/hidden"]["meaning"]


def test_keras_file_slots_are_the_ones_keras_reloads(keras3_files: dict[str, Path]) -> None:
    """``optimizer/vars/<i>`` attributed by order and shape is the variable Keras itself loads
    there: its name (``hidden_kernel_momentum``) ends with the slot and holds the weight's."""
    import keras

    description = describe_artifact(keras3_files["keras"])
    tree = {n["path"]: n["meaning"] for n in description["tree"]}
    model = keras.saving.load_model(keras3_files["keras"])
    variables = model.optimizer.variables
    assert len([p for p in tree if p.startswith("optimizer/vars/") and "@" not in p]) == len(
        variables
    )
    attributed = 0
    for i, variable in enumerate(variables):
        meaning = tree[f"optimizer/vars/{i}"]
        if variable.name == "iteration":
            assert "step counter" in meaning
            continue
        if variable.name == "learning_rate":
            assert "learning rate" in meaning
            continue
        slot, weight = meaning.split("'")[1], meaning.split("'")[3]
        assert variable.name.endswith(f"_{slot}"), (i, variable.name, meaning)
        assert description["weights"][weight]["shape"] == list(variable.shape)
        assert weight.rsplit("/", 1)[-1] in variable.name, (i, variable.name, meaning)
        if weight.count("/") == 1:  # a layer's own variable: Keras's name is the weight's
            assert variable.name == f"{weight.replace('/', '_')}_{slot}"
        attributed += 1
    assert attributed == len(variables) - 2


def test_an_unknown_optimizer_or_odd_dataset_is_said_not_interpreted() -> None:
    description = {
        "hdf5": {
            "": {"kind": "group", "attrs": {"mystery": 1}},
            "optimizer": {"kind": "group", "attrs": {}},
            "optimizer/vars": {"kind": "group", "attrs": {"name": "shampoo"}},
            "optimizer/vars/0": {"kind": "dataset", "shape": [], "dtype": "int64", "attrs": {}},
            "optimizer/vars/1": {"kind": "dataset", "shape": [3], "dtype": "float32", "attrs": {}},
            "stray": {"kind": "dataset", "shape": [2], "dtype": "float32", "attrs": {}},
        },
        "weights": {"d/kernel": {"shape": [3]}},
        "weight_paths": {},
        "layers": [],
        "optimizer": {"class_name": "Shampoo"},
    }
    tree = {n["path"]: n["meaning"] for n in explain_tree(description)}
    assert tree["@mystery"] == NOT_INTERPRETED
    assert tree["stray"] == NOT_INTERPRETED
    assert "not attributed" in tree["optimizer/vars/1"]
    assert "step counter" in tree["optimizer/vars/0"]


@pytest.mark.skipif(
    not (REALWORLD / "k1.2.2_dl4j_simple_lstm_theano_full.h5").is_file(),
    reason="the real Keras 1 file of /work/shared/realworld is absent",
)
def test_a_keras1_file_is_explained() -> None:
    description = describe_artifact(REALWORLD / "k1.2.2_dl4j_simple_lstm_theano_full.h5")
    _accounted(description)
    tree = {n["path"]: n for n in description["tree"]}
    assert tree["model_weights/dense_1/dense_1_W"]["weight"]
    assert "by position only" in tree["optimizer_weights/param_0"]["meaning"]


def test_inspect_tree_and_json(keras3_files: dict[str, Path]) -> None:
    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pytest_kerasmodel", "inspect", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    text = run("--tree", str(keras3_files["h5"]))
    lines = text.splitlines()
    assert lines[0] == "tiny.h5 (h5): HDF5 tree, each node's Keras meaning"
    assert (
        "        kernel  dataset [6, 4] float32  -- variable 'hidden/kernel' of layer 'hidden' "
        "(Dense), shape [6, 4]" in lines
    )
    assert any(line.startswith("    top_level_model_weights/  -- ") for line in lines)
    description = json.loads(run("--json", str(keras3_files["h5"])))
    assert description["tree"] == explain_tree(description)
    assert render_tree(description["tree"], title=lines[0]) == text.rstrip("\n")
