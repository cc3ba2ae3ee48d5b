"""Safety scan of Keras artifacts: read the bytes, execute nothing.

The scan looks at what Keras would deserialise before anything is deserialised: the model config
(``config.json`` inside a ``.keras`` zip, or the ``model_config`` / ``training_config`` attributes
of a legacy HDF5 file), the zip container itself, and the HDF5 object tree. It uses only ``json``,
``zipfile``, ``struct`` and ``h5py`` (imported lazily); it never imports Keras or TensorFlow, never
unpickles, unmarshals or evaluates anything, and never extracts a member to disk.

Each problem is a :class:`Finding` naming the check, where it is (layer path, zip member or HDF5
path) and why it matters. An empty list means the scan found nothing, not that the model is good.
The scan reports every finding, not the first: a bad container (duplicate members, overlaps)
does not end it, and each member is scanned by its own entry, duplicates included. Pickles are
analysed with :mod:`pytest_kerasmodel.safety.pickles` (opcodes only) so a finding names what they
call.

Check names:

- config: ``lambda-bytecode`` (marshalled Python code), ``foreign-module`` (a class or function
  outside Keras and KerasHub, not allowed by the user), ``dangerous-function`` (Keras functions
  that are not modelling code), ``unsafe-switch`` (safe_mode off), ``file-reference`` (a path read
  while building), ``tf-op`` (a tf.keras op layer running more than tensor maths),
  ``torch-pickle`` (a ``TorchModuleWrapper`` carrying ``torch.save`` bytes, CVE-2025-49655);
- zip: ``zip-path``, ``zip-duplicate``, ``zip-unexpected-member``, ``zip-compressed``,
  ``zip-bomb``, ``zip-overlap``, ``zip-header-mismatch``, ``zip-member-count``; ``pickle`` (a
  member that is a pickle or a torch.save archive, whatever its name, or is named like one);
  ``npz-pickle`` (an object array, i.e. a pickle, in ``model.weights.npz``);
- HDF5: ``h5-external-link``, ``h5-soft-link``, ``h5-external-storage``, ``h5-virtual-dataset``,
  ``h5-shape-bomb``, ``h5-too-many-objects``, ``h5-hygiene``, ``h5-filter``, ``h5-object-data``
  (object, opaque or reference data, pickle bytes: analysed when they are a pickle),
  ``h5-unreadable``;
- SavedModel: ``unreviewed-op`` (a graph op outside the allowlist of pure computation, with what
  it can do; :mod:`.savedmodel`, :mod:`.tfops`), and ``keras_metadata.pb``'s nodes as configs;
- ``unreadable``, ``unreadable-config``: what cannot be read cannot be vouched for.

A finding that matches a published Keras vulnerability carries it in ``Finding.cve``: which CVE,
which Keras versions, whether the installed Keras is one (:mod:`.cves`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_kerasmodel.errors import ArtifactError
from pytest_kerasmodel.safety.base import Finding
from pytest_kerasmodel.safety.config import scan_config
from pytest_kerasmodel.safety.container import scan_zip
from pytest_kerasmodel.safety.hdf5 import _scan_h5_artifact, _scan_h5_file, scan_hdf5
from pytest_kerasmodel.safety.layouts import (
    _FILE_FORMATS,
    _scan_exported,
    _scan_opened_parts,
    _scan_parts_by_path,
    _scan_saved_model,
)
from pytest_kerasmodel.safety.members import _scan_keras_zip, _scan_open_zip

if TYPE_CHECKING:  # pragma: no cover
    from pytest_kerasmodel.artifacts import Artifact

__all__ = [
    "Finding",
    "scan_artifact",
    "scan_config",
    "scan_hdf5",
    "scan_zip",
]


def scan_artifact(
    path: str | os.PathLike[str] | Artifact, *, allowed_modules: Iterable[str] = ()
) -> list[Finding]:
    """Scan a Keras artifact without loading it: the kind comes from the bytes, not the name.

    A ``.keras`` zip gets the container checks, its ``config.json`` and its inner
    ``model.weights.h5``; an HDF5 file (legacy model, ``.weights.h5``) gets the HDF5 hygiene and
    its ``model_config``/``training_config``. A file that is neither, or cannot be parsed, gives
    an ``unreadable`` finding: what cannot be read cannot be vouched for.

    ``path`` may also be an :class:`~pytest_kerasmodel.artifacts.Artifact` already opened by
    :func:`~pytest_kerasmodel.artifacts.open_artifact`: the same scan, on the open file (the gate
    shares one open between its checks). A file that ``open_artifact`` refuses can only be
    scanned by path, which reports why as findings.
    """
    from pytest_kerasmodel.safety.cves import annotate

    findings, kind = _scan(path, tuple(allowed_modules))
    return annotate(findings, kind)


def _scan(
    path: str | os.PathLike[str] | Artifact, allowed: tuple[str, ...]
) -> tuple[list[Finding], str]:
    """The findings, and the kind of artifact for the CVE table: keras, h5, savedmodel or ""."""
    from pytest_kerasmodel import artifacts

    if not isinstance(path, (str, os.PathLike)):  # an opened Artifact
        opened = path
        if opened.format in artifacts.EXPORTED_FORMATS:
            kind = "savedmodel" if opened.format == artifacts.FORMAT_SAVEDMODEL else ""
            return _scan_exported(opened, allowed), kind
        if opened.format == artifacts.FORMAT_KERAS:
            assert opened.zip is not None and opened.zip_file is not None
            return _scan_open_zip(
                opened.zip, opened.zip_file, opened.path, allowed, opened
            ), "keras"
        if opened.format in _FILE_FORMATS:
            assert opened.h5 is not None
            return _scan_h5_file(opened.h5, "", allowed, opened.nodes), "h5"
        return _scan_opened_parts(opened, allowed), ""
    artifact = Path(path)
    try:
        kind = artifacts.sniff(artifact)
    except ArtifactError as error:
        return [Finding("unreadable", artifact.name, error.reason)], ""
    if kind in artifacts.EXPORTED_FORMATS:
        try:
            with artifacts.open_artifact(artifact) as exported:
                return _scan_exported(exported, allowed), kind
        except ArtifactError as error:
            found = [Finding("unreadable", artifact.name, error.reason)]
            return (
                _scan_saved_model(artifact, allowed) if kind == "savedmodel" else []
            ) + found, kind
    if kind == "zip":
        return _scan_keras_zip(artifact, allowed), "keras"
    if kind == "hdf5":
        return _scan_h5_artifact(artifact, "", allowed), "h5"
    return _scan_parts_by_path(artifact, allowed), ""
