"""Safety for the layouts of several files and for exported artifacts: each part scanned by what
it is (JSON config, HDF5 store, plain file), SavedModel graphs and manifests.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_kerasmodel.artifacts.base import PICKLE_SUFFIXES
from pytest_kerasmodel.errors import ArtifactError
from pytest_kerasmodel.safety.base import NOTHING_ALLOWED, Allowed, Finding, _prefixed
from pytest_kerasmodel.safety.config import _parse_config, scan_config
from pytest_kerasmodel.safety.hdf5 import _scan_h5_artifact, _scan_h5_file
from pytest_kerasmodel.safety.members import (
    _SNIFF_WHOLE_BYTES,
    _ZIP_READ_ERRORS,
    _content_findings,
    _npy_findings,
    _npz_arrays,
    _torch_or_pickle,
)
from pytest_kerasmodel.safety.rules import CONFIG_MAX_BYTES, MEMBER_MAX_BYTES
from pytest_kerasmodel.safety.savedmodel import scan_saved_model

if TYPE_CHECKING:  # pragma: no cover
    from pytest_kerasmodel.artifacts import Artifact

_FILE_FORMATS = ("h5", "h5-weights", "weights.h5")


def _scan_opened_parts(opened: Artifact, allowed: Allowed) -> list[Finding]:
    """A layout of several files, opened (references already checked by its reader): every
    JSON document a loader deserialises, and every HDF5 file, under the file's name."""
    findings: list[Finding] = []
    for name, config in opened.configs:
        findings += _prefixed(
            scan_config(config, allowed_modules=allowed.modules, allowed_classes=allowed.classes),
            f"{name}:",
        )
    for store in opened.stores:
        findings += _scan_h5_file(store.h5, f"{store.label}: ", allowed, store.nodes)
    folder = opened.path if opened.path.is_dir() else opened.path.parent
    for part in opened.parts:
        if not part.name.lower().endswith((".json", ".h5", ".hdf5")):
            findings += _scan_plain_file(folder / part.name, part.name)
    return findings


def _scan_plain_file(file: Path, label: str) -> list[Finding]:
    """A file of a folder layout that is neither JSON nor HDF5 (``model.weights.npz``, an
    asset): read for pickles, whatever its name, as an archive's members are."""
    from pytest_kerasmodel.safety.pickles import looks_like_pickle

    npz = file.name == "model.weights.npz"
    pickled_name = file.name.lower().endswith(PICKLE_SUFFIXES)
    try:
        with open(file, "rb") as fh:
            head = fh.read(6)
            fh.seek(0)
            if npz and head[:4] == b"PK\x03\x04":
                with zipfile.ZipFile(fh) as inner:
                    return _npz_arrays(inner, label)
            small = os.fstat(fh.fileno()).st_size <= _SNIFF_WHOLE_BYTES
            if not (npz or pickled_name or small or looks_like_pickle(head[:2])):
                return []
            data = fh.read(MEMBER_MAX_BYTES)
    except (*_ZIP_READ_ERRORS, SyntaxError) as error:
        return [Finding("unreadable", label, f"cannot be read: {error}")]
    if head.startswith(b"\x93NUMPY"):
        return _npy_findings(io.BytesIO(data), label, "pickle")
    if npz:
        what = "is not an .npz archive: np.load(allow_pickle=True) unpickles it, and it is"
        found = _torch_or_pickle(label, data, what)
        return [found] if found is not None else []
    return _content_findings(label, data, pickled_name)


def _scan_parts_by_path(path: Path, allowed: Allowed) -> list[Finding]:
    """A folder layout or a manifest that its reader refused: scan each file it is made of on
    its own (JSON configs, HDF5 files, manifests' references), so every finding is named."""
    from pytest_kerasmodel import artifacts

    findings: list[Finding] = []
    folder = path if path.is_dir() else path.parent
    for file in artifacts.owned_files(path):
        label = file.relative_to(folder).as_posix()
        try:
            artifacts.check_path_kind(file)
        except ArtifactError as error:
            findings.append(Finding("unreadable", label, error.reason))
            continue
        if file.name.lower().endswith(".json"):
            try:
                if file.stat().st_size > CONFIG_MAX_BYTES:
                    findings.append(Finding("unreadable-config", label, "too large to be a config"))
                    continue
                text = file.read_bytes()
            except OSError as error:
                findings.append(Finding("unreadable-config", label, f"cannot be read: {error}"))
                continue
            config, problems = _parse_config(text, label)
            findings += problems
            weight_map = config.get("weight_map") if isinstance(config, dict) else None
            if isinstance(weight_map, dict):  # a sharded-weights manifest
                findings += _manifest_references(file, weight_map, label)
            elif config is not None:
                findings += _prefixed(
                    scan_config(
                        config, allowed_modules=allowed.modules, allowed_classes=allowed.classes
                    ),
                    f"{label}:",
                )
        elif file.suffix.lower() in (".h5", ".hdf5"):
            findings += _scan_h5_artifact(file, f"{label}: ", allowed)
        else:
            findings += _scan_plain_file(file, label)
    return findings


def _manifest_references(file: Path, weight_map: dict[str, Any], label: str) -> list[Finding]:
    """Every shard a manifest names must be a plain file name beside it."""
    from pytest_kerasmodel.artifacts.base import inside
    from pytest_kerasmodel.artifacts.sharded import shard_names

    findings = []
    for name in shard_names({"weight_map": weight_map}):
        where = inside(file.parent, name)
        if where is None or where.parent != file.parent:
            findings.append(
                Finding(
                    "reference-outside",
                    f"{label}: weight_map",
                    f"names the shard {name!r}, which lies outside the artifact's folder: "
                    "loading it would read that file",
                )
            )
    return findings


def _scan_exported(opened: Artifact, allowed: Allowed = NOTHING_ALLOWED) -> list[Finding]:
    """An exported graph (SavedModel, ONNX, LiteRT, OpenVINO IR), parsed by its reader and never
    run: every operation or reference that reaches outside the graph (files, processes, Python,
    native code) is a finding. A SavedModel is read whole by :mod:`.savedmodel` (its ops on the
    allowlist of pure computation, which supersedes its reader's short list of unsafe ops)."""
    from pytest_kerasmodel import artifacts

    if opened.format == artifacts.FORMAT_SAVEDMODEL:
        parsed = opened.graph.parsed if opened.graph is not None else None
        return _scan_saved_model(opened.path, allowed, parsed)
    graph = opened.graph
    if graph is None:
        return []
    return [Finding("graph", where, reason) for where, reason in graph.unsafe]


def _scan_saved_model(
    folder: Path, allowed: Allowed = NOTHING_ALLOWED, parsed: Any = None
) -> list[Finding]:
    """A SavedModel folder: its Keras metadata as configs, its graph's ops on the allowlist, and
    the files under ``assets/`` read for pickles, as a zip's members are."""
    findings = scan_saved_model(folder, allowed, parsed)
    assets = folder / "assets"
    if assets.is_dir():
        for file in sorted(f for f in assets.rglob("*") if f.is_file()):
            findings += _scan_plain_file(file, file.relative_to(folder).as_posix())
    return findings
