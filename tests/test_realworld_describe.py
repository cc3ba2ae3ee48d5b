"""Files published by others, written by Keras 1.2.2 to 3.13: each is described correctly.

They live in ../shared/realworld/ beside the project (never copied into it); the tests skip when
that folder is absent.
"""

from __future__ import annotations

import csv
import json

import pytest
from builders.describe_artifacts import REALWORLD

from pytest_kerasmodel import assert_h5_structure, describe_artifact

KIND_TO_FORMAT = {
    "full-h5": "h5",
    "weights-h5": "h5-weights",
    "keras-zip": "keras",
    "weights.h5": "weights.h5",
}


def _provenance() -> list[dict[str, str]]:
    table = REALWORLD / "PROVENANCE.tsv"
    if not table.is_file():
        return []
    with table.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


ROWS = _provenance()
pytestmark = pytest.mark.skipif(not ROWS, reason=f"real-world files not found in {REALWORLD}")


@pytest.mark.parametrize("row", ROWS, ids=[r["file"] for r in ROWS])
def test_realworld_file_is_described(row: dict[str, str]) -> None:
    path = REALWORLD / row["file"]
    d = describe_artifact(path)
    assert d["format"] == KIND_TO_FORMAT[row["kind"]]
    expected_version = None if row["keras_version"] == "(absent)" else row["keras_version"]
    assert d["keras_version"] == expected_version
    if "TextVectorization" in row["architecture_note"]:
        # a TextVectorization layer has no variables: its vocabulary is an asset of the archive
        assert d["weights"] == {} and d["params"] == 0
        members = [m["name"] for m in d["zip"]]
        assert "assets/layers/text_vectorization/vocabulary.txt" in members
    else:
        assert d["weights"], "every other file holds weights"
    assert d["params"] == sum(layer["params"] for layer in d["layers"])
    assert json.loads(json.dumps(d)) == d
    assert_h5_structure(path, d, exact=True)  # a file always matches its own description


def test_realworld_lambda_layers_are_noted() -> None:
    d = describe_artifact(REALWORLD / "k2.0.9_dl4j_functional_lambda_full.h5")
    assert d["lambda_layers"] == ["lambda_3", "lambda_4"]
    assert any("Lambda layer 'lambda_3'" in note for note in d["notes"])


def test_realworld_keras1_sequential_list_config() -> None:
    d = describe_artifact(REALWORLD / "k1.2.2_dl4j_simple_lstm_theano_full.h5")
    assert d["model"] == {"class_name": "Sequential", "name": None}
    assert [layer["name"] for layer in d["layers"]] == ["lstm_1", "dense_1"]
    # Keras 1's LSTM keeps its own twelve names; its Dense maps to kernel/bias
    assert "lstm_1/W_i" in d["weights"]
    assert d["weights"]["dense_1/kernel"] == {"shape": [50, 1], "dtype": "float32"}
    assert d["optimizer"]["class_name"] == "RMSprop"


def test_realworld_tf_keras_zip_uses_layer_checkpoint_dependencies() -> None:
    d = describe_artifact(REALWORLD / "tfk2.14_beliefppg_custom_layers_v3zip.keras")
    assert d["weights"]["lstm/recurrent_kernel"] == {"shape": [64, 256], "dtype": "float32"}
    assert d["weight_paths"]["lstm/recurrent_kernel"] == (
        "_layer_checkpoint_dependencies/lstm/cell/vars/1"
    )


def test_realworld_bidirectional_keras2_names() -> None:
    d = describe_artifact(REALWORLD / "k2.2.5_fdeep_lstm_bidir_multiinput_full.h5")
    assert d["weights"]["bidirectional_1/backward/recurrent_kernel"]["shape"] == [4, 16]
