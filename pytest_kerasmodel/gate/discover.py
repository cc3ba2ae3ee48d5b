"""Which paths are Keras artifacts: files by suffix, SavedModel folders by saved_model.pb."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

ARTIFACT_SUFFIXES = (".keras", ".h5", ".hdf5")  # ".weights.h5" ends with ".h5"
SAVEDMODEL_MARKERS = ("saved_model.pb", "saved_model.pbtxt")


def is_artifact_file(path: Path) -> bool:
    return path.name.lower().endswith(ARTIFACT_SUFFIXES) and not path.is_dir()


def is_savedmodel_dir(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in SAVEDMODEL_MARKERS)


def model_dir_of(path: Path, model_dirs: Iterable[Path]) -> Path | None:
    """The model folder (from ``--keras-model-dir``) that ``path`` lies in, if any."""
    resolved = path.resolve()
    for directory in model_dirs:
        if resolved == directory or resolved.is_relative_to(directory):
            return directory
    return None


def find_artifacts(model_dirs: Iterable[Path]) -> list[Path]:
    """Every artifact under the folders, recursively, sorted; SavedModel folders are not entered.

    Hidden folders (``.git``, ``.ipynb_checkpoints``) are skipped, as pytest skips them.
    """
    found: list[Path] = []
    for root in model_dirs:
        if not root.is_dir():
            continue
        if is_savedmodel_dir(root):
            found.append(root)
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            keep = []
            for name in sorted(dirnames):
                if name.startswith("."):
                    continue
                if is_savedmodel_dir(here / name):
                    found.append(here / name)
                else:
                    keep.append(name)
            dirnames[:] = keep
            found.extend(here / n for n in filenames if is_artifact_file(here / n))
    return sorted(dict.fromkeys(found))
