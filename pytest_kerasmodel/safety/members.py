"""The members of a ``.keras`` zip: the config, the weights store and every other member, each
scanned by its content (pickles, torch archives, ``.npy``/``.npz`` object arrays), not its name.
"""

from __future__ import annotations

import collections
import io
import struct
import zipfile
import zlib
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pytest_kerasmodel.artifacts.base import PICKLE_SUFFIXES
from pytest_kerasmodel.artifacts.ziplocal import read_local_header
from pytest_kerasmodel.safety.base import Allowed, Finding, _prefixed
from pytest_kerasmodel.safety.config import _parse_config, scan_config
from pytest_kerasmodel.safety.container import _bad_name, _zip_findings, with_zip
from pytest_kerasmodel.safety.hdf5 import _scan_h5_artifact, _scan_h5_file
from pytest_kerasmodel.safety.rules import CONFIG_MAX_BYTES, MEMBER_MAX_BYTES, ZIP_MAX_MEMBERS

if TYPE_CHECKING:  # pragma: no cover
    from pytest_kerasmodel.artifacts import Artifact


def _scan_keras_zip(path: Path, allowed: Allowed) -> list[Finding]:
    return with_zip(path, lambda zf, raw: _scan_open_zip(zf, raw, path, allowed))


def _scan_open_zip(
    zf: zipfile.ZipFile,
    raw: IO[bytes],
    path: Path,
    allowed: Allowed,
    opened: Artifact | None = None,
) -> list[Finding]:
    """The container, then every member by its own entry (duplicates included: readers disagree
    on which copy counts, so each is scanned): each config.json, model.weights.h5 and
    model.weights.npz, and any member holding a pickle. With ``opened`` (the same archive
    opened by :func:`~pytest_kerasmodel.artifacts.open_artifact`, which refuses duplicates), its
    inner HDF5 file and checked tree are scanned instead of opening the member a second time."""
    findings = _zip_findings(zf, raw, "")
    if any(f.check == "zip-member-count" for f in findings):
        return findings  # too many members to read each: the count is the finding
    infos = zf.infolist()
    copies = collections.Counter(info.filename for info in infos)
    mismatched = {f.where for f in findings if f.check == "zip-header-mismatch"}
    members = _Members(zf, raw, path, mismatched)
    seen: collections.Counter[str] = collections.Counter()
    order = sorted(range(len(infos)), key=lambda i: (_MEMBER_RANK.get(infos[i].filename, 3), i))
    for info in (infos[i] for i in order):
        name = info.filename
        seen[name] += 1
        label = name if copies[name] == 1 else f"{name} (copy {seen[name]} of {copies[name]})"
        if info.is_dir():
            continue
        if name == "config.json":
            findings += _scan_config_member(members, info, label, allowed)
        elif name == "model.weights.h5":
            only = opened if copies[name] == 1 else None
            findings += _scan_weights_member(members, info, label, allowed, only)
        elif name == "model.weights.npz":
            findings += _scan_npz_member(members, info, label)
        else:
            findings += _scan_other_member(members, info, label)
    return findings


#: config.json first, then the weights, then every other member (each group in zip order).
_MEMBER_RANK = {"config.json": 0, "model.weights.h5": 1, "model.weights.npz": 2}


#: Other members up to this size are read whole to recognise protocol 0/1 pickles (which have
#: no header); larger ones are recognised by their first bytes only.
_SNIFF_WHOLE_BYTES = 1024 * 1024


_ZIP_READ_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    ValueError,
    EOFError,
    NotImplementedError,
    struct.error,
    zlib.error,
)


def _member_where(info: zipfile.ZipInfo, label: str) -> str:
    copy = label[len(info.filename) :]
    return f"zip member {info.filename!r}{copy}"


class _Members:
    """Reads a member's bytes from its own local entry (not by name, so each duplicate is read),
    bounded, without extracting anything."""

    def __init__(
        self, zf: zipfile.ZipFile, raw: IO[bytes], path: Path, mismatched: set[str]
    ) -> None:
        self.zf, self.raw, self.path, self.mismatched = zf, raw, path, mismatched

    def skipped(self, info: zipfile.ZipInfo) -> bool:
        """A member whose local header disagrees with the directory: already a finding, and
        its bytes are not where the directory says."""
        return f"zip member {info.filename!r}" in self.mismatched

    def read(self, info: zipfile.ZipInfo, limit: int) -> bytes:
        """Up to ``limit`` bytes of the member's content; raises what reading raised."""
        if info.compress_type == zipfile.ZIP_STORED:
            header = read_local_header(self.raw, info.header_offset)
            if header is None:
                raise ValueError("no local file header at its offset")
            self.raw.seek(header.data_start)
            return self.raw.read(min(info.compress_size, limit))
        with self.zf.open(info) as member:
            return member.read(limit)


def _scan_config_member(
    members: _Members, info: zipfile.ZipInfo, label: str, allowed: Allowed
) -> list[Finding]:
    if members.skipped(info):
        return []
    if info.file_size > CONFIG_MAX_BYTES or info.compress_size > CONFIG_MAX_BYTES:
        size = max(info.file_size, info.compress_size)
        reason = f"{size} bytes: too large to be a model config"
        return [Finding("unreadable-config", label, reason)]
    try:
        text = members.read(info, CONFIG_MAX_BYTES)
    except _ZIP_READ_ERRORS as error:
        return [Finding("unreadable-config", label, f"cannot be read: {error}")]
    config, findings = _parse_config(text, label)
    if config is not None:
        findings += _prefixed(
            scan_config(config, allowed_modules=allowed.modules, allowed_classes=allowed.classes),
            f"{label}:",
        )
    return findings


def _scan_weights_member(
    members: _Members,
    info: zipfile.ZipInfo,
    label: str,
    allowed: Allowed,
    opened: Artifact | None,
) -> list[Finding]:
    prefix = f"{label}: "
    if opened is not None and opened.h5 is not None:
        return _scan_h5_file(opened.h5, prefix, allowed, opened.nodes)
    if members.skipped(info):
        return []
    if info.compress_type == zipfile.ZIP_STORED:
        from pytest_kerasmodel.artifacts import HygieneError
        from pytest_kerasmodel.artifacts.kerasfile import stored_member_window

        try:
            window = stored_member_window(members.raw, info, members.path)
        except HygieneError as error:
            return [Finding("zip-header-mismatch", _member_where(info, label), error.reason)]
        return _scan_h5_artifact(window, prefix, allowed)
    if info.file_size > MEMBER_MAX_BYTES:
        return [
            Finding(
                "unreadable",
                _member_where(info, label),
                f"compressed, {info.file_size} bytes: too large to scan in memory "
                f"(limit {MEMBER_MAX_BYTES})",
            )
        ]
    try:
        data = members.read(info, MEMBER_MAX_BYTES)
    except _ZIP_READ_ERRORS as error:
        return [Finding("unreadable", _member_where(info, label), f"cannot be read: {error}")]
    return _scan_h5_artifact(io.BytesIO(data), prefix, allowed)


def _pickle_finding(check: str, where: str, what: str, data: bytes) -> Finding:
    from pytest_kerasmodel.safety.pickles import analyse_pickle

    report = analyse_pickle(data)
    return Finding(check, where, f"{what} a pickle that {report.summary()}")


def _torch_or_pickle(where: str, data: bytes, what: str) -> Finding | None:
    """A finding when ``data`` is a pickle or a torch.save zip holding pickles, else None."""
    from pytest_kerasmodel.safety.pickles import analyse_torch_payload, looks_like_pickle

    if data[:4] == b"PK\x03\x04":
        payload = analyse_torch_payload(data)
        if not payload.pickles:
            return None
        return Finding(
            "pickle",
            where,
            f"{what} a torch.save archive (loading it runs torch.load(weights_only=False)): "
            f"{payload.summary()}",
        )
    if looks_like_pickle(data):
        return _pickle_finding("pickle", where, what, data)
    return None


def _scan_other_member(members: _Members, info: zipfile.ZipInfo, label: str) -> list[Finding]:
    """Any other member: a pickle (whatever its name), a torch.save zip, a pickle-named file,
    an ``.npy`` object array. Reads two bytes of large members that start like neither."""
    from pytest_kerasmodel.safety.pickles import looks_like_pickle

    if members.skipped(info):
        return []
    where = _member_where(info, label)
    pickled_name = info.filename.lower().endswith(PICKLE_SUFFIXES)
    try:
        head = members.read(info, 6)
        small = info.file_size <= _SNIFF_WHOLE_BYTES
        if not (pickled_name or small or looks_like_pickle(head[:2]) or head[:4] == b"PK\x03\x04"):
            return []
        if head.startswith(b"\x93NUMPY"):
            return _npy_findings(io.BytesIO(members.read(info, MEMBER_MAX_BYTES)), where, "pickle")
        data = members.read(info, MEMBER_MAX_BYTES)
    except _ZIP_READ_ERRORS as error:
        if pickled_name:
            return [Finding("pickle", where, f"named like pickled data; cannot be read: {error}")]
        return [Finding("unreadable", where, f"cannot be read: {error}")]
    return _content_findings(where, data, pickled_name)


def _content_findings(where: str, data: bytes, pickled_name: bool) -> list[Finding]:
    """What a member or file that is neither config nor weights holds: a pickle or a
    torch.save archive, analysed; a pickle-named file that does not parse is still one."""
    found = _torch_or_pickle(where, data, "holds")
    if found is not None:
        return [found]
    if pickled_name:
        return [
            Finding(
                "pickle",
                where,
                "named like pickled data (.pkl, .pt, .joblib...), which a Keras artifact never "
                "holds, though its bytes do not parse as a pickle",
            )
        ]
    return []


def _npy_findings(fh: IO[bytes], where: str, check: str) -> list[Finding]:
    """An ``.npy`` file's header (numpy's literal parser); only an object array's data is read:
    it is a pickle after the header, analysed."""
    from numpy.lib import format as npy

    version = npy.read_magic(fh)
    if version == (1, 0):
        _, _, dtype = npy.read_array_header_1_0(fh)
    else:
        _, _, dtype = npy.read_array_header_2_0(fh)
    if not dtype.hasobject:
        return []
    return [
        _pickle_finding(
            check,
            where,
            f"object array (dtype {dtype}): reading it needs numpy's allow_pickle=True, which "
            "runs any code the pickle holds (Keras 3.15 refuses it); it is",
            fh.read(MEMBER_MAX_BYTES),
        )
    ]


def _scan_npz_member(members: _Members, info: zipfile.ZipInfo, label: str) -> list[Finding]:
    """Weights saved as ``.npz`` (a zip of ``.npy`` files): object arrays are pickles, analysed.
    A member of that name that is not a zip but a pickle is one too: ``np.load(...,
    allow_pickle=True)`` unpickles any file that is not a zip or an ``.npy``."""
    if members.skipped(info):
        return []
    where = _member_where(info, label)
    try:
        head = members.read(info, 4)
        if head != b"PK\x03\x04":
            if info.file_size > MEMBER_MAX_BYTES:
                return [Finding("unreadable", label, f"{info.file_size} bytes: not an .npz")]
            data = members.read(info, MEMBER_MAX_BYTES)
            if head.startswith(b"\x93NUMPY"):
                return _npy_findings(io.BytesIO(data), f"{label}: array", "npz-pickle")
            found = _torch_or_pickle(
                where,
                data,
                "is not an .npz archive: numpy's np.load(allow_pickle=True) unpickles it, and it "
                "is",
            )
            if found is not None:
                return [found]
            return [Finding("unreadable", label, "cannot be read as .npz: not a zip archive")]
        with members.zf.open(info) as member, zipfile.ZipFile(member) as inner:
            return _npz_arrays(inner, label)
    except (*_ZIP_READ_ERRORS, SyntaxError) as error:
        return [Finding("unreadable", label, f"cannot be read as .npz: {error}")]


def _npz_arrays(inner: zipfile.ZipFile, label: str) -> list[Finding]:
    """The arrays of an open ``.npz``: object arrays are pickles, analysed."""
    infos = inner.infolist()
    if len(infos) > ZIP_MAX_MEMBERS:
        return [Finding("zip-member-count", label, f"{len(infos)} arrays")]
    findings: list[Finding] = []
    for array in infos:
        array_where = f"{label}: array {array.filename!r}"
        if _bad_name(array.filename):
            findings.append(Finding("zip-path", array_where, _bad_name(array.filename) or ""))
        with inner.open(array) as fh:
            findings += _npy_findings(fh, array_where, "npz-pickle")
    return findings
