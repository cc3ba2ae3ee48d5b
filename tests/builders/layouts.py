"""Builders of the newer layouts, each written by the real Keras or KerasHub writer once per
session: the unzipped model folder, sharded weights, KerasHub presets, and their hostile twins.

The healthy model is one tiny MLP (two Dense(3) layers) saved every way Keras saves it, so a
test can compare one layout with another of the same weights. The hostile twins are healthy
artifacts edited the way an attacker would (a Lambda in config.json, a manifest naming a shard
outside its folder, a preset naming a module outside Keras), each builder saying what it does.
Links and FIFOs are made by the tests themselves, in the folder they gate.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

#: small enough that each Dense layer's variables (48 bytes) get a shard of their own, large
#: enough that no single variable (36 bytes) exceeds it (Keras refuses that)
SHARD_GB = 5e-8
#: written by the Lambda layers' functions if anything ever ran them
MARKER_NAME = "LAYOUT_LAMBDA_RAN"
#: written when the module a hostile preset names is imported
FOREIGN_MODULE = "evil_hub_models"
FOREIGN_MARKER = "FOREIGN_MODULE_IMPORTED"
BERT_VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c"]


def _mlp(keras: Any) -> Any:
    return keras.Sequential(
        [
            keras.Input((3,), name="features"),
            keras.layers.Dense(3, activation="relu", name="hidden"),
            keras.layers.Dense(3, name="out"),
        ],
        name="mlp",
    )


def build_layout_files(folder: Path) -> dict[str, Path]:
    """The Keras-written layouts, keyed by a short name:

    ``mlp.keras``, ``mlp.weights.h5``, ``mlp_dir`` (``zipped=False``), ``sharded`` (a folder
    holding ``w.weights.json`` and its shards), ``lambda_dir`` (a model with a Lambda layer,
    ``zipped=False``), ``outside`` (a folder whose ``w.weights.json`` names
    ``../outside.weights.h5``) and ``outside.weights.h5`` (the shard it would read).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(0)
    files: dict[str, Path] = {}
    mlp = _mlp(keras)
    files["mlp.keras"] = folder / "mlp.keras"
    mlp.save(files["mlp.keras"])
    files["mlp.weights.h5"] = folder / "mlp.weights.h5"
    mlp.save_weights(files["mlp.weights.h5"])
    files["mlp_dir"] = folder / "mlp_dir"
    keras.saving.save_model(mlp, files["mlp_dir"], zipped=False)
    files["sharded"] = folder / "sharded"
    files["sharded"].mkdir()
    mlp.save_weights(files["sharded"] / "w.weights.json", max_shard_size=SHARD_GB)

    # A Lambda whose function writes a marker file: a lambda expression so that Keras stores
    # its bytecode, with the marker's path a literal inside it.
    marker = folder / MARKER_NAME
    touch = eval(f"lambda x: (open({str(marker)!r}, 'w').write('the Lambda ran'), x)[1]")
    lam = keras.Sequential(
        [keras.Input((3,)), keras.layers.Lambda(touch, name="touch"), keras.layers.Dense(3)],
        name="lam",
    )
    files["lambda_dir"] = folder / "lambda_dir"
    keras.saving.save_model(lam, files["lambda_dir"], zipped=False)
    marker.unlink(missing_ok=True)
    assert "lambda" in (files["lambda_dir"] / "config.json").read_text().lower()

    # A manifest whose weight map sends one layer to a shard outside the artifact's folder.
    files["outside"] = folder / "outside"
    shutil.copytree(files["sharded"], files["outside"])
    manifest_file = files["outside"] / "w.weights.json"
    manifest = json.loads(manifest_file.read_text())
    first = sorted(manifest["weight_map"])[0]
    moved = manifest["weight_map"][first][0]
    manifest["weight_map"][first] = ["../outside.weights.h5"]
    manifest_file.write_text(json.dumps(manifest, indent=2))
    files["outside.weights.h5"] = folder / "outside.weights.h5"
    shutil.move(files["outside"] / moved, files["outside.weights.h5"])
    return files


def _bert(keras_hub: Any) -> tuple[Any, Any]:
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=8,
        num_layers=1,
        num_heads=1,
        hidden_dim=4,
        intermediate_dim=8,
        max_sequence_length=8,
    )
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=BERT_VOCABULARY)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=8)
    task = keras_hub.models.BertTextClassifier(backbone, num_classes=2, preprocessor=preprocessor)
    return backbone, task


def build_preset_files(folder: Path) -> dict[str, Path]:
    """KerasHub presets of one tiny BERT, written by ``save_to_preset``, keyed by a short name:

    ``task_preset`` (a BertTextClassifier with its preprocessor and tokenizer),
    ``backbone_preset`` (the backbone alone), ``backbone.keras`` (the backbone saved by Keras),
    ``sharded_preset`` (the backbone with sharded weights) and ``foreign_preset`` (the backbone
    preset whose config.json names the module :data:`FOREIGN_MODULE`, outside Keras).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    backbone, task = _bert(keras_hub)
    files = {
        "task_preset": folder / "task_preset",
        "backbone_preset": folder / "backbone_preset",
        "backbone.keras": folder / "backbone.keras",
        "sharded_preset": folder / "sharded_preset",
        "foreign_preset": folder / "foreign_preset",
    }
    task.save_to_preset(files["task_preset"])
    backbone.save_to_preset(files["backbone_preset"])
    backbone.save(files["backbone.keras"])
    backbone.save_to_preset(files["sharded_preset"], max_shard_size=1e-6)

    shutil.copytree(files["backbone_preset"], files["foreign_preset"])
    config_file = files["foreign_preset"] / "config.json"
    config = json.loads(config_file.read_text())
    config["module"] = FOREIGN_MODULE
    config_file.write_text(json.dumps(config, indent=4))
    return files


def write_foreign_module(folder: Path) -> Path:
    """A module named :data:`FOREIGN_MODULE` that writes :data:`FOREIGN_MARKER` into ``folder``
    when imported: the proof that the gate never imported what a preset names."""
    marker = folder / FOREIGN_MARKER
    module = folder / f"{FOREIGN_MODULE}.py"
    module.write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    return marker


def copy_artifact(src: Path, dst: Path) -> Path:
    """Copy a file or folder artifact to ``dst`` (parents created)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copyfile(src, dst)
    return dst


def link_tree(src: Path, dst: Path) -> Path:
    """``dst`` mirrors ``src``: the same folders, and in them a symbolic link to each file."""
    for dirpath, _dirnames, filenames in os.walk(src):
        here = dst / Path(dirpath).relative_to(src)
        here.mkdir(parents=True, exist_ok=True)
        for name in filenames:
            (here / name).symlink_to(Path(dirpath, name).resolve())
    return dst


def hf_cache(model_dir: Path, cache: Path, revision: str = "abc") -> Path:
    """A Hugging Face hub cache of an unzipped model folder: ``blobs/<sha256>`` hold the bytes,
    ``snapshots/<revision>/<name>`` are relative links into ``../../blobs``. Returns the
    snapshot folder."""
    blobs = cache / "blobs"
    snapshot = cache / "snapshots" / revision
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for file in sorted(model_dir.iterdir()):
        if not file.is_file():
            continue
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        shutil.copyfile(file, blobs / digest)
        (snapshot / file.name).symlink_to(Path("..", "..", "blobs", digest))
    return snapshot


def gate_report(pytester: Any, *args: str, folder: str = "models") -> tuple[Any, dict[str, Any]]:
    """Like :func:`gate_artifacts.run_gate`, returning the whole --keras-report JSON (with its
    ``not_checked``), its artifacts keyed by their full id (``models/sub/x.keras``)."""
    report = pytester.path / "gate-report.json"
    result = pytester.runpytest(
        "--keras-model-dir", folder, "--keras-report", str(report), "-p", "no:cacheprovider", *args
    )
    data: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    report.unlink(missing_ok=True)
    data["by_id"] = {a["artifact"]: a for a in data.get("artifacts", [])}
    return result, data
