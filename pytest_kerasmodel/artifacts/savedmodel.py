"""Reader: a TensorFlow SavedModel folder (detected and named; its graph is not read here)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from pytest_kerasmodel.artifacts.base import FORMAT_SAVEDMODEL, Artifact, Limits, Part, link_of

NAME = "savedmodel"
MARKERS = ("saved_model.pb", "saved_model.pbtxt")


def claims(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in MARKERS)


def owned_files(path: Path) -> list[Path]:
    return sorted(f for f in path.rglob("*") if not f.is_dir())


def open_savedmodel(path: Path, limits: Limits, stack: contextlib.ExitStack) -> Artifact:
    files = sorted(
        (str(f.relative_to(path)), f.stat().st_size) for f in owned_files(path) if f.is_file()
    )
    notes = []
    if (path / "keras_metadata.pb").is_file():
        notes.append("tf.keras SavedModel (keras_metadata.pb): Keras 3 cannot load it")
    return Artifact(
        path=path,
        format=FORMAT_SAVEDMODEL,
        file_size=sum(size for _, size in files),
        savedmodel_files=files,
        parts=[Part(name, "savedmodel", size, link_of(path / name)) for name, size in files],
        link=link_of(path),
        notes=notes,
    )
