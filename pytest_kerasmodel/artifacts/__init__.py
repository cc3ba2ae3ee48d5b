"""What a file or folder is, from its content, and how to open it safely without Keras.

One reader per layout, each a module with the same small interface: ``NAME``, ``claims(path)``
(cheap, from content and structure, never from the name alone), ``owned_files(path)`` (the files
it reads, for discovery) and ``open_*(path, limits, stack) -> Artifact``. :data:`FILE_LAYOUTS`
and :data:`FOLDER_LAYOUTS` are the one registry that discovery, describe, the safety scan and
the gate all ask; a new layout is a new module added there.

=====================  ==================================================================
layout (reader)        formats (``Artifact.format``)
=====================  ==================================================================
sharded-weights        ``weights.json``: a ``.weights.json`` manifest and its shards
keras-zip              ``keras``: the ``.keras`` zip (Keras 3, tf.keras >= 2.13)
hdf5                   ``h5``, ``h5-weights``, ``weights.h5``: one HDF5 file of any era
savedmodel             ``savedmodel``: a TensorFlow SavedModel folder (its graph parsed)
onnx                   ``onnx``: an ONNX model file (``model.export(format="onnx")``)
tflite                 ``tflite``: a LiteRT / TensorFlow Lite flatbuffer
openvino-ir            ``openvino-ir``: an OpenVINO IR ``.xml`` and its ``.bin``
orbax                  ``orbax``: an Orbax checkpoint folder (named only)
kerashub-preset        ``kerashub-preset``: a KerasHub / KerasNLP preset folder
keras-folder           ``keras-dir``: the unzipped model folder (``zipped=False``)
=====================  ==================================================================

:func:`open_artifact` is the one door to an artifact's content: the reader checks the hygiene
of everything it opens (HDF5 links and storage, zip members, manifest references) BEFORE any
dataset is read, and yields an :class:`Artifact`.

Beside the readers: :mod:`~pytest_kerasmodel.artifacts.names` names an opened artifact's
variables alike in every layout, and :mod:`~pytest_kerasmodel.artifacts.accounting` tells what
every dataset and attribute is (a model, optimizer or metric variable) or lists it as unread.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from pytest_kerasmodel.artifacts import (
    folder,
    h5file,
    kerasfile,
    onnxfile,
    openvinoir,
    orbax,
    preset,
    savedmodel,
    sharded,
    tflitefile,
)
from pytest_kerasmodel.artifacts.base import (
    DEFAULT_LIMITS,
    EXPORTED_FORMATS,
    FORMAT_H5,
    FORMAT_H5_WEIGHTS,
    FORMAT_KERAS,
    FORMAT_KERAS_DIR,
    FORMAT_ONNX,
    FORMAT_OPENVINO,
    FORMAT_ORBAX,
    FORMAT_PRESET,
    FORMAT_SAVEDMODEL,
    FORMAT_SHARDED,
    FORMAT_TFLITE,
    FORMAT_TITLES,
    FORMAT_WEIGHTS_H5,
    FORMATS,
    KERAS_ZIP_CONFIG,
    KERAS_ZIP_METADATA,
    KERAS_ZIP_WEIGHTS,
    WEIGHTS_ONLY_FORMATS,
    Artifact,
    ExportedGraph,
    HygieneError,
    Limits,
    Part,
    Store,
    TensorSpec,
    check_path_kind,
    container_of,
    extension_note,
    extension_of,
    link_of,
    read_head,
)
from pytest_kerasmodel.errors import ArtifactError

__all__ = [
    "DEFAULT_LIMITS",
    "EXPORTED_FORMATS",
    "EXPORTED_LAYOUTS",
    "FILE_LAYOUTS",
    "FOLDER_LAYOUTS",
    "FORMATS",
    "FORMAT_H5",
    "FORMAT_H5_WEIGHTS",
    "FORMAT_KERAS",
    "FORMAT_KERAS_DIR",
    "FORMAT_ONNX",
    "FORMAT_OPENVINO",
    "FORMAT_ORBAX",
    "FORMAT_PRESET",
    "FORMAT_SAVEDMODEL",
    "FORMAT_SHARDED",
    "FORMAT_TFLITE",
    "FORMAT_TITLES",
    "FORMAT_WEIGHTS_H5",
    "KERAS_ZIP_CONFIG",
    "KERAS_ZIP_METADATA",
    "KERAS_ZIP_WEIGHTS",
    "WEIGHTS_ONLY_FORMATS",
    "Artifact",
    "ExportedGraph",
    "HygieneError",
    "Limits",
    "Part",
    "Store",
    "TensorSpec",
    "check_path_kind",
    "detect_format",
    "extension_note",
    "extension_of",
    "layout_of",
    "open_artifact",
    "owned_files",
    "sniff",
]

Opener = Callable[[Path, Limits, contextlib.ExitStack], Artifact]

#: file layouts, in the order they are asked (a manifest is JSON; then zip, then HDF5)
FILE_LAYOUTS: tuple[tuple[ModuleType, Opener], ...] = (
    (sharded, sharded.open_sharded),
    (kerasfile, kerasfile.open_keras),
    (h5file, h5file.open_h5),
    (tflitefile, tflitefile.open_tflite),
    (openvinoir, openvinoir.open_openvino),
    (onnxfile, onnxfile.open_onnx),
)
#: the file layouts of exported graphs (model.export), whose first bytes are neither zip nor HDF5
EXPORTED_LAYOUTS: tuple[ModuleType, ...] = (tflitefile, openvinoir, onnxfile)
#: folder layouts, in the order they are asked (the most specific first)
FOLDER_LAYOUTS: tuple[tuple[ModuleType, Opener], ...] = (
    (savedmodel, savedmodel.open_savedmodel),
    (orbax, orbax.open_orbax),
    (preset, preset.open_preset),
    (folder, folder.open_folder),
)

#: file names that are Keras artifacts whatever their content says (a damaged ``.keras`` is
#: still gated, and fails integrity saying why, instead of passing unseen)
ARTIFACT_SUFFIXES = (".keras", ".h5", ".hdf5", sharded.SUFFIX, onnxfile.SUFFIX, ".tflite")


def layout_of(path: Path) -> ModuleType | None:
    """The reader whose layout ``path`` has, from its content; None when no layout claims it.
    ``path`` must have passed :func:`check_path_kind`."""
    layouts = FOLDER_LAYOUTS if path.is_dir() else FILE_LAYOUTS
    for module, _ in layouts:
        if module.claims(path):
            return module
    return None


def owned_files(path: Path) -> list[Path]:
    """The files that the artifact at ``path`` is made of (for discovery; nothing is opened)."""
    module = layout_of(path)
    if module is None:
        return [path]
    owned: Callable[[Path], list[Path]] | None = getattr(module, "owned_files", None)
    return owned(path) if owned is not None else [path]


def _opener(module: ModuleType) -> Opener:
    for known, opener in FILE_LAYOUTS + FOLDER_LAYOUTS:
        if known is module:
            return opener
    raise AssertionError(module)  # pragma: no cover


def sniff(path: str | os.PathLike[str]) -> str:
    """The container kind from magic bytes alone: ``"hdf5"``, ``"zip"``, or the name of a folder
    or manifest layout. Raises :class:`ArtifactError` (check ``format``) for anything else."""
    p = Path(path)
    check_path_kind(p)
    if p.is_dir():
        module = layout_of(p)
        if module is None:
            raise ArtifactError(
                p,
                "format",
                "a folder that is no Keras artifact: no saved_model.pb, no config.json with "
                "model.weights.h5 or metadata.json, no KerasHub preset, no Orbax checkpoint",
            )
        return str(module.NAME)
    if sharded.claims(p) or p.name.lower().endswith(sharded.SUFFIX):
        return sharded.NAME  # (a damaged manifest: its reader says what is wrong)
    try:
        head = read_head(p)
    except OSError as exc:
        raise ArtifactError(p, "format", f"cannot read the file: {exc.strerror or exc}") from None
    kind = container_of(head)
    if kind is not None:
        return kind
    for module in EXPORTED_LAYOUTS:
        if module.claims(p):
            return str(module.NAME)
    if p.name.lower().endswith(".tflite") and head:
        return tflitefile.NAME  # (a damaged flatbuffer: its reader says what is wrong)
    if not head:
        raise ArtifactError(p, "format", "the file is empty")
    raise ArtifactError(
        p,
        "format",
        f"neither HDF5 nor zip: the file starts with {head[:8]!r}",
        hint="Keras artifacts are .keras zips, HDF5 files (.h5, .weights.h5), .weights.json "
        "manifests, or model, preset and SavedModel folders",
    )


#: the reader of each kind :func:`sniff` tells (a folder's kind is its layout's name)
_READERS: dict[str, ModuleType] = {
    "zip": kerasfile,  # (a zip that is no .keras archive: its reader says so)
    "hdf5": h5file,
    sharded.NAME: sharded,  # (a damaged manifest: its reader says what is wrong)
    **{module.NAME: module for module in EXPORTED_LAYOUTS},
    **{module.NAME: module for module, _ in FOLDER_LAYOUTS},
}


def detect_format(path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS) -> str:
    """The artifact's format (one of :data:`FORMATS`) from its content, never its extension."""
    with open_artifact(path, limits=limits) as artifact:
        return artifact.format


@contextlib.contextmanager
def open_artifact(
    path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS
) -> Iterator[Artifact]:
    """Open an artifact read-only, check its hygiene, and yield an :class:`Artifact`.

    Raises :class:`ArtifactError` naming the file, the check and the reason when the path is not
    a Keras artifact, is damaged, or holds something a safe reader refuses.
    """
    p = Path(path)
    # the reader from one look at the path (its first bytes for a file): sniff's kind names it,
    # and sniff says why when nothing could read it
    kind = sniff(p)
    module = _READERS.get(kind) or layout_of(p)
    assert module is not None
    with contextlib.ExitStack() as stack:
        artifact = _opener(module)(p, limits, stack)
        if artifact.link is None:
            artifact.link = link_of(p)
        note = extension_note(p, artifact.format)
        if note:
            artifact.notes.insert(0, note)
        yield artifact


def guess_format(path: Path) -> str:
    """The format a path would have, from the cheapest look at it (magic bytes, a folder's
    marker files, a zip's central directory), for a report about an artifact that cannot be
    opened; ``"unknown"`` when even that fails."""
    try:
        check_path_kind(path)
        module = layout_of(path)
    except (ArtifactError, OSError):
        return "unknown"
    formats_of: dict[Any, str] = {
        sharded: FORMAT_SHARDED,
        kerasfile: FORMAT_KERAS,
        savedmodel: FORMAT_SAVEDMODEL,
        orbax: FORMAT_ORBAX,
        preset: FORMAT_PRESET,
        folder: FORMAT_KERAS_DIR,
        onnxfile: FORMAT_ONNX,
        tflitefile: FORMAT_TFLITE,
        openvinoir: FORMAT_OPENVINO,
    }
    if module is h5file:
        return FORMAT_H5
    if module is None:
        try:
            return FORMAT_KERAS if container_of(read_head(path)) == "zip" else "unknown"
        except OSError:
            return "unknown"
    return formats_of.get(module, "unknown")
