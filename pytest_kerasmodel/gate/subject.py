"""The artifact under check: its path, format and what the checks share (the open file, the model
once loaded), and the format guessed from its bytes.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_kerasmodel import artifacts
from pytest_kerasmodel.artifacts.ziplocal import SIZES_AFTER_DATA, read_local_header
from pytest_kerasmodel.errors import ArtifactError
from pytest_kerasmodel.gate.protocol import WEIGHTS_ONLY_FORMATS, Request
from pytest_kerasmodel.gate.usercode import UserCode
from pytest_kerasmodel.gate.zipcrc import _ZipCrcJob


@dataclass
class Subject:
    """The artifact under check and what the checks learn about it, shared between them.

    The file-only checks that read the file (integrity, safety) share one open
    (:meth:`opened`, read-only, hygiene checked), closed (:meth:`close`) before any other check
    runs: Keras opens the file itself, and HDF5 refuses a second open held with other flags.
    Later checks that need the file again open it themselves (:meth:`open`).
    """

    path: Path
    request: Request
    format: str = "unknown"
    writer: str = ""
    backend: str = ""
    size: int = 0
    params: int | None = None
    findings: list[str] = field(default_factory=list)
    description: dict[str, Any] | None = None  # describe_artifact's, read by the integrity check
    model: Any = None
    # told {"event": "import"} / {"event": "imported", "seconds": ...} around the first import of
    # Keras, so that the worker's client does not count Keras's start-up against this artifact's
    # time limit (even when it reads the events later than they were sent)
    notify: Callable[[dict[str, Any]], None] | None = None
    # set by iter_checks when checks that can run before the zip CRCs are known follow integrity:
    # then check_integrity leaves its CRC job running in pending_crc
    defer_crc: bool = False
    pending_crc: _ZipCrcJob | None = None
    # check -> why it has nothing to compare (see nothing_to_compare), decided before any runs
    skip_reasons: dict[str, str] = field(default_factory=dict)
    # what one check read for the next (the provenance checks' digests: see gate.provenance)
    shared: dict[str, Any] = field(default_factory=dict)
    _files: ExitStack = field(default_factory=ExitStack)
    _opened: artifacts.Artifact | None = None
    _open_error: Exception | None = None

    def user_code(self) -> UserCode:
        """The team's code of ``--keras-import`` / ``--keras-custom-objects``, imported in this
        process at the first check that needs it (safety, load); a failed import is that check's
        failure."""
        from pytest_kerasmodel.gate.protocol import CheckFailure
        from pytest_kerasmodel.gate.usercode import UserCodeError, load

        request = self.request
        try:
            return load(request.imports, request.custom_objects, request.import_path)
        except UserCodeError as exc:
            raise CheckFailure(str(exc)) from None

    def opened(self) -> artifacts.Artifact:
        """The artifact opened once for the file-only checks; raises what opening it raised."""
        if self._opened is None:
            if self._open_error is not None:
                raise self._open_error
            try:
                self._opened = self._files.enter_context(artifacts.open_artifact(self.path))
            except Exception as exc:
                self._open_error = exc
                raise
        return self._opened

    def already_opened(self) -> artifacts.Artifact | None:
        """The shared open when an earlier check made it, else None (nothing is opened here)."""
        return self._opened

    def close(self) -> None:
        self._opened = None
        self._files.close()

    @property
    def weights_only(self) -> bool:
        return self.format in WEIGHTS_ONLY_FORMATS

    def info(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "writer": self.writer,
            "backend": self.backend,
            "size": self.size,
            "params": self.params,
        }

    @contextmanager
    def open(self) -> Iterator[artifacts.Artifact]:
        with artifacts.open_artifact(self.path) as opened:
            yield opened


def _zip_member_names(path: Path, limit: int = 16) -> list[str]:
    """The archive's member names: from its central directory, or, when that is gone (a
    truncated archive), from the first local headers walked from the start of the file."""
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        pass
    names: list[str] = []
    offset = 0
    with open(path, "rb") as fh:
        for _ in range(limit):
            header = read_local_header(fh, offset)
            if header is None:
                break
            names.append(header.name_text())
            if header.flags & SIZES_AFTER_DATA:  # the next header cannot be found cheaply
                break
            offset = header.data_start + header.compress_size
    return names


def guess_format(path: Path) -> str:
    """The artifact's format from a cheap look that reads no data, for an artifact whose
    integrity check could not say (a damaged archive still shows as ``keras``).

    A zip naming a ``config.json`` member is ``keras``; an HDF5 file is told apart by its root
    attribute names and top-level groups when HDF5 can open it; a folder layout or a manifest is
    what the artifact registry says; anything else is ``unknown``.
    """
    guessed = artifacts.guess_format(path)
    if guessed not in (artifacts.FORMAT_KERAS, artifacts.FORMAT_H5, "unknown"):
        return guessed
    try:
        kind = artifacts.sniff(path)
    except ArtifactError:
        return "unknown"
    if kind == "savedmodel":
        return artifacts.FORMAT_SAVEDMODEL
    if kind in artifacts.EXPORTED_FORMATS:  # a file layout's name is its format's
        return kind
    if kind == "zip":
        try:
            names = _zip_member_names(path)
        except (OSError, UnicodeDecodeError):
            return "unknown"
        return artifacts.FORMAT_KERAS if artifacts.KERAS_ZIP_CONFIG in names else "unknown"
    import h5py

    try:
        with h5py.File(path, "r") as f:
            attrs, groups = set(f.attrs.keys()), set(f.keys())
    except Exception:  # HDF5 cannot open it (truncated, damaged superblock): no family to tell
        return "unknown"
    if "model_config" in attrs or "model_weights" in groups:
        return artifacts.FORMAT_H5
    if "layer_names" in attrs or "layer_names0" in attrs:
        return artifacts.FORMAT_H5_WEIGHTS
    if groups & {"layers", "vars", "optimizer", "_layer_checkpoint_dependencies"}:
        return artifacts.FORMAT_WEIGHTS_H5
    return "unknown"
