"""Reader: one HDF5 file, in each Keras era's layout.

``h5`` (legacy full model: Keras 1.x, 2.x, tf.keras and Keras 3's ``.h5`` writer, with a
``model_config`` attribute and a ``model_weights`` group), ``h5-weights`` (legacy
``save_weights``: ``layer_names`` at the root, no config) and ``weights.h5`` (Keras 3
``.weights.h5``: ``layers/<name>/vars/<i>``). Which one a file is comes from its root
attributes and top-level groups (:func:`~pytest_kerasmodel.artifacts.hdf5.hdf5_layout`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from pytest_kerasmodel.artifacts.base import (
    FORMAT_H5,
    H5_ERRORS,
    Artifact,
    Limits,
    Part,
    attr_json,
    link_of,
    sniff_file,
    text,
)
from pytest_kerasmodel.artifacts.hdf5 import add_store, hdf5_layout
from pytest_kerasmodel.errors import ArtifactError

NAME = "hdf5"


def claims(path: Path) -> bool:
    """A regular file whose bytes carry the HDF5 signature."""
    return path.is_file() and sniff_file(path) == "hdf5"


def open_h5(path: Path, limits: Limits, stack: contextlib.ExitStack) -> Artifact:
    import h5py

    size = path.stat().st_size
    try:
        f = stack.enter_context(h5py.File(path, "r"))
    except H5_ERRORS as exc:
        raise ArtifactError(path, "hdf5", f"HDF5 library cannot open the file: {exc}") from None
    artifact = Artifact(path=path, format=FORMAT_H5, file_size=size, h5=f)
    artifact.parts = [Part(path.name, "weights", size, link_of(path))]
    try:
        store = add_store(artifact, f, "", limits)  # hygiene first: nothing read before this
    except H5_ERRORS as exc:
        raise ArtifactError(path, "hdf5", f"cannot read the file's structure: {exc}") from None
    artifact.nodes = store.nodes
    attrs = artifact.nodes[0].attrs  # the root group's, as the walk read them
    try:
        artifact.format = hdf5_layout(f, attrs)
    except ValueError as exc:
        raise ArtifactError(path, "format", str(exc)) from None
    if artifact.format == FORMAT_H5:
        artifact.config = attr_json(attrs, "model_config", path)
        artifact.training_config = attr_json(attrs, "training_config", path)
        weights = f.get("model_weights")
        artifact.weights_root = weights if weights is not None else f
        if artifact.config is not None:
            artifact.configs.append(("model_config", artifact.config))
    else:
        artifact.weights_root = f
    for source in (attrs, artifact.attrs_of(artifact.weights_root)):
        if artifact.keras_version is None and "keras_version" in source:
            artifact.keras_version = text(source["keras_version"])
        if artifact.backend is None and "backend" in source:
            artifact.backend = text(source["backend"])
    # in the file's attribute order (creation order when the file tracks it)
    artifact.metadata = {k: text(attrs[k]) for k in f.attrs if k in ("keras_version", "backend")}
    return artifact
