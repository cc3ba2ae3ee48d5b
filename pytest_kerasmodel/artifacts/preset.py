"""Reader: a KerasHub (or KerasNLP) preset folder, as ``save_to_preset`` writes it.

``config.json`` (the backbone, ``registered_name: "keras_hub>BertBackbone"``), ``metadata.json``
(``keras_hub_version``), the backbone's weights as ``model.weights.h5`` or sharded
(``model.weights.json`` + ``model_00000.weights.h5`` ...), and for a task ``task.json`` with
``task.weights.h5``, ``preprocessor.json``, ``tokenizer.json`` and ``assets/`` (a tokenizer's
vocabulary). The model described is the backbone; the task's own weights are a component,
every JSON document is scanned, and every weights file is walked.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from pytest_kerasmodel.artifacts import sharded
from pytest_kerasmodel.artifacts.base import (
    FORMAT_PRESET,
    KERAS_ZIP_CONFIG,
    KERAS_ZIP_METADATA,
    KERAS_ZIP_WEIGHTS,
    Artifact,
    Limits,
    link_of,
    part,
    read_json_file,
)
from pytest_kerasmodel.artifacts.folder import owned_files as folder_files
from pytest_kerasmodel.artifacts.folder import read_config, read_metadata
from pytest_kerasmodel.artifacts.hdf5 import open_store, open_weights_file
from pytest_kerasmodel.errors import ArtifactError

NAME = "kerashub-preset"
TASK_CONFIG = "task.json"
TASK_WEIGHTS = "task.weights.h5"
PREPROCESSOR = "preprocessor.json"
TOKENIZER = "tokenizer.json"
SHARDED_MANIFEST = "model.weights.json"
FILES = {
    KERAS_ZIP_CONFIG: "config",
    KERAS_ZIP_METADATA: "metadata",
    KERAS_ZIP_WEIGHTS: "weights",
    SHARDED_MANIFEST: "manifest",
    TASK_CONFIG: "task",
    TASK_WEIGHTS: "task weights",
    PREPROCESSOR: "preprocessor",
    TOKENIZER: "tokenizer",
}
HUB_PACKAGES = ("keras_hub", "keras_nlp")
_PROBE_BYTES = 64 * 1024


def _mentions_hub(file: Path) -> bool:
    try:
        with open(file, "rb") as fh:
            head = fh.read(_PROBE_BYTES)
    except OSError:
        return False
    return any(
        key in head
        for package in HUB_PACKAGES
        for key in (
            f'"{package}>'.encode(),
            f'"{package}.'.encode(),
            f'"{package}_version"'.encode(),
        )
    )


def claims(path: Path) -> bool:
    """A folder whose config.json or metadata.json names KerasHub / KerasNLP (a registered
    name ``keras_hub>...``, a module ``keras_hub.…``, a ``keras_hub_version``)."""
    if not path.is_dir():
        return False
    return any(
        (path / name).is_file() and _mentions_hub(path / name)
        for name in (KERAS_ZIP_CONFIG, KERAS_ZIP_METADATA, TASK_CONFIG)
    )


def owned_files(path: Path) -> list[Path]:
    files = folder_files(path, FILES)
    manifest = path / SHARDED_MANIFEST
    if manifest.is_file():
        files += [f for f in sharded.owned_files(manifest)[1:] if f not in files]
    return sorted(files)


def open_preset(path: Path, limits: Limits, stack: contextlib.ExitStack) -> Artifact:
    artifact = Artifact(path=path, format=FORMAT_PRESET, file_size=0, link=link_of(path))
    artifact.parts = [part(path, f, _role(path, f)) for f in owned_files(path)]
    config_file = path / KERAS_ZIP_CONFIG
    if config_file.is_file():
        read_config(artifact, limits)
    read_metadata(artifact, limits)
    for name in (TASK_CONFIG, PREPROCESSOR, TOKENIZER):
        if (path / name).is_file():
            document = read_json_file(path / name, name, path, limits)
            artifact.configs.append((name, document))
            artifact.components[name.removesuffix(".json")] = {
                "class_name": document.get("class_name") if isinstance(document, dict) else None,
                "registered_name": (
                    document.get("registered_name") if isinstance(document, dict) else None
                ),
            }
    if (path / KERAS_ZIP_WEIGHTS).is_file():
        open_weights_file(artifact, path / KERAS_ZIP_WEIGHTS, KERAS_ZIP_WEIGHTS, stack, limits)
    elif (path / SHARDED_MANIFEST).is_file():
        _open_sharded_backbone(artifact, path / SHARDED_MANIFEST, limits, stack)
    else:
        artifact.notes.append(f"the preset has no {KERAS_ZIP_WEIGHTS} nor {SHARDED_MANIFEST}")
    if (path / TASK_WEIGHTS).is_file():
        store = open_store(artifact, path / TASK_WEIGHTS, TASK_WEIGHTS, stack, limits)
        artifact.components.setdefault("task", {})["weights_store"] = artifact.stores.index(store)
    if not config_file.is_file() and not (path / TASK_CONFIG).is_file():
        raise ArtifactError(path, "format", f"a preset without {KERAS_ZIP_CONFIG} or {TASK_CONFIG}")
    artifact.file_size = sum(p.size for p in artifact.parts)
    return artifact


def _open_sharded_backbone(
    artifact: Artifact, manifest_file: Path, limits: Limits, stack: contextlib.ExitStack
) -> None:
    """The backbone's sharded weights (read before any other store, so that the shards' store
    numbers stay as the sharded reader gave them): its shards become the model's weights."""
    assert not artifact.stores
    inner = sharded.open_sharded(manifest_file, limits, stack)
    artifact.stores.extend(inner.stores)
    artifact.nodes = inner.nodes
    artifact.weights_root = inner.weights_root
    artifact.h5 = inner.h5
    artifact.notes += inner.notes


def _role(folder: Path, file: Path) -> str:
    if file.parent != folder:
        return "asset"
    return FILES.get(file.name, "shard")
