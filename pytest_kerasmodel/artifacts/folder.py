"""Reader: the unzipped Keras model folder.

``keras.saving.save_model(model, "m", zipped=False)`` (Keras >= 3.4) writes the members of a
``.keras`` archive as files: ``config.json``, ``metadata.json``, ``model.weights.h5`` (or
``model.weights.npz``) and ``assets/``. It is also what Hugging Face uploads of Keras models
hold, and ``keras.saving.load_model("m")`` loads it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pytest_kerasmodel.artifacts.base import (
    FORMAT_KERAS_DIR,
    KERAS_ASSETS,
    KERAS_ZIP_CONFIG,
    KERAS_ZIP_METADATA,
    KERAS_ZIP_WEIGHTS,
    KERAS_ZIP_WEIGHTS_NPZ,
    Artifact,
    Limits,
    Part,
    link_of,
    part,
    read_json_file,
    text,
)
from pytest_kerasmodel.artifacts.hdf5 import open_weights_file
from pytest_kerasmodel.artifacts.kerasfile import NPZ_NOTE

NAME = "keras-folder"
FILES = {
    KERAS_ZIP_CONFIG: "config",
    KERAS_ZIP_METADATA: "metadata",
    KERAS_ZIP_WEIGHTS: "weights",
    KERAS_ZIP_WEIGHTS_NPZ: "weights",
}


def claims(path: Path) -> bool:
    """A folder with a ``config.json`` beside ``model.weights.h5``/``.npz`` or
    ``metadata.json``, as Keras's saving_lib writes it."""
    return _present(path / KERAS_ZIP_CONFIG) and any(
        _present(path / name)
        for name in (KERAS_ZIP_WEIGHTS, KERAS_ZIP_WEIGHTS_NPZ, KERAS_ZIP_METADATA)
    )


def _present(file: Path) -> bool:
    """A file, or a link in its place even when it leads nowhere: the folder is still the
    artifact, and its integrity check names the broken part."""
    return file.is_file() or file.is_symlink()


def asset_files(folder: Path) -> list[Path]:
    """Every file under ``folder/assets``, sorted; links to folders are not entered."""
    root = folder / KERAS_ASSETS
    if not root.is_dir():
        return []
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        found.extend(Path(dirpath) / n for n in filenames)
    return sorted(found)


def owned_files(folder: Path, names: dict[str, str] = FILES) -> list[Path]:
    """The files of ``folder`` that the layout reads: the known names present, and the assets."""
    known = [folder / n for n in names if (folder / n).exists() or (folder / n).is_symlink()]
    return known + asset_files(folder)


def parts_of(folder: Path, names: dict[str, str] = FILES) -> list[Part]:
    parts = []
    for file in owned_files(folder, names):
        role = names.get(file.name, "asset") if file.parent == folder else "asset"
        parts.append(part(folder, file, role))
    return parts


def read_config(artifact: Artifact, limits: Limits) -> None:
    """The folder's config.json: the model config (and its compile config), to be scanned."""
    folder = artifact.path
    artifact.config = read_json_file(folder / KERAS_ZIP_CONFIG, KERAS_ZIP_CONFIG, folder, limits)
    artifact.configs.append((KERAS_ZIP_CONFIG, artifact.config))
    if isinstance(artifact.config, dict):
        artifact.training_config = artifact.config.get("compile_config")


def read_metadata(artifact: Artifact, limits: Limits) -> None:
    """The folder's metadata.json, when there is one: the writer's Keras version."""
    folder = artifact.path
    if (folder / KERAS_ZIP_METADATA).is_file():
        metadata = read_json_file(folder / KERAS_ZIP_METADATA, KERAS_ZIP_METADATA, folder, limits)
        if isinstance(metadata, dict):
            artifact.metadata = metadata
            artifact.keras_version = text(metadata.get("keras_version"))


def read_saving_lib_files(artifact: Artifact, limits: Limits, stack: contextlib.ExitStack) -> None:
    """config.json, metadata.json and the weights file of a folder that saving_lib wrote."""
    folder = artifact.path
    read_config(artifact, limits)
    read_metadata(artifact, limits)
    if (folder / KERAS_ZIP_WEIGHTS).is_file():
        open_weights_file(artifact, folder / KERAS_ZIP_WEIGHTS, KERAS_ZIP_WEIGHTS, stack, limits)
    elif (folder / KERAS_ZIP_WEIGHTS_NPZ).is_file():
        artifact.notes.append(NPZ_NOTE)
        artifact.weights_unread = NPZ_NOTE


def open_folder(path: Path, limits: Limits, stack: contextlib.ExitStack) -> Artifact:
    artifact = Artifact(path=path, format=FORMAT_KERAS_DIR, file_size=0, link=link_of(path))
    artifact.parts = parts_of(path)
    artifact.file_size = sum(p.size for p in artifact.parts)
    read_saving_lib_files(artifact, limits, stack)
    if not (path / KERAS_ZIP_WEIGHTS).is_file() and not (path / KERAS_ZIP_WEIGHTS_NPZ).is_file():
        artifact.notes.append(f"the folder has no {KERAS_ZIP_WEIGHTS}")
    return artifact
