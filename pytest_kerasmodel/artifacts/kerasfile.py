"""Reader: the ``.keras`` zip (Keras 3, and tf.keras >= 2.13 "keras_v3").

``config.json``, ``metadata.json`` and ``model.weights.h5`` (or ``model.weights.npz``), with
``assets/``. The central directory is checked before anything is read (bounded member count and
sizes, no path outside the archive, no pickled members, no duplicate names); the inner
``model.weights.h5`` is read in place from the archive (Keras stores it uncompressed), never
extracted.
"""

from __future__ import annotations

import collections
import contextlib
import io
import re
import struct
import zipfile
from pathlib import Path
from typing import Any

from pytest_kerasmodel.artifacts.base import (
    DEFAULT_LIMITS,
    FORMAT_KERAS,
    H5_ERRORS,
    KERAS_ZIP_CONFIG,
    KERAS_ZIP_METADATA,
    KERAS_ZIP_WEIGHTS,
    KERAS_ZIP_WEIGHTS_NPZ,
    PICKLE_SUFFIXES,
    Artifact,
    HygieneError,
    Limits,
    Part,
    ZipMember,
    link_of,
    parse_json,
    sniff_file,
    text,
)
from pytest_kerasmodel.artifacts.hdf5 import IN_MEMORY_WEIGHTS_BYTES, open_image, use_weights_file
from pytest_kerasmodel.artifacts.ziplocal import read_local_header
from pytest_kerasmodel.errors import ArtifactError

NAME = "keras-zip"


def claims(path: Path) -> bool:
    """A regular file with a zip signature that is named ``.keras`` or holds a config.json
    (read from the central directory only)."""
    if not path.is_file() or sniff_file(path) != "zip":
        return False
    if path.name.lower().endswith(".keras"):
        return True
    try:
        with zipfile.ZipFile(path) as zf:
            return any(info.filename == KERAS_ZIP_CONFIG for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error):
        return False


_METHODS = {0: "stored", 8: "deflated", 12: "bzip2", 14: "lzma"}
#: a member named like pickled data, or a NumPy array file (which may hold an object array, a
#: pickle): a Keras archive holds neither
_REFUSED_SUFFIXES = (*PICKLE_SUFFIXES, ".npy")


def check_zip(zf: zipfile.ZipFile, path: Path, limits: Limits = DEFAULT_LIMITS) -> list[ZipMember]:
    """Refuse a zip whose central directory is unsafe to act on; list its members. Reads no data."""
    infos = zf.infolist()
    if len(infos) > limits.max_zip_members:
        raise HygieneError(path, "zip", f"{len(infos)} members (limit {limits.max_zip_members})")
    members: list[ZipMember] = []
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name):
            raise HygieneError(path, "zip", f"member {name!r} has a path outside the archive")
        if info.flag_bits & 0x1:
            raise HygieneError(
                path,
                "zip",
                f"member {name!r} is encrypted: it cannot be read without a password (Keras "
                "never writes encrypted archives)",
            )
        if info.file_size > limits.max_zip_member_bytes:
            raise HygieneError(
                path,
                "zip",
                f"member {name!r} declares {info.file_size} bytes "
                f"(limit {limits.max_zip_member_bytes})",
            )
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > max(
            limits.max_zip_ratio * max(info.compress_size, 1), 1024**2
        ):
            raise HygieneError(
                path,
                "zip",
                f"member {name!r} declares {info.file_size} bytes from {info.compress_size} "
                "compressed bytes: a zip bomb",
            )
        if name.lower().endswith(_REFUSED_SUFFIXES):
            raise HygieneError(
                path, "zip", f"member {name!r} is pickled data, which a Keras archive never holds"
            )
        members.append(
            ZipMember(
                name=name,
                size=info.file_size,
                compressed_size=info.compress_size,
                method=_METHODS.get(info.compress_type, str(info.compress_type)),
                offset=info.header_offset,
            )
        )
    return members


class _Window(io.RawIOBase):
    """A read-only, seekable view of ``length`` bytes at ``start`` of an open file.

    Keras stores the inner model.weights.h5 uncompressed, so h5py can read it in place from
    the archive: no extraction to disk and no copy in memory.
    """

    def __init__(self, fh: Any, start: int, length: int) -> None:
        super().__init__()
        self._fh = fh
        self._start = start
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._length + offset
        else:  # pragma: no cover
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise OSError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self._length - self._pos))
        if n == 0:
            return 0
        self._fh.seek(self._start + self._pos)
        got = self._fh.readinto(view[:n])
        self._pos += got or 0
        return got or 0

    def readall(self) -> bytes:
        out = bytearray(max(0, self._length - self._pos))
        n = self.readinto(out)
        return bytes(out[:n])

    def writable(self) -> bool:
        return False


def stored_member_window(fh: Any, info: zipfile.ZipInfo, path: Path) -> _Window:
    header = read_local_header(fh, info.header_offset)
    if header is None:
        raise HygieneError(path, "zip", f"member {info.filename!r} has no valid local header")
    return _Window(fh, header.data_start, info.file_size)


def _json_member(zf: zipfile.ZipFile, name: str, path: Path, limits: Limits) -> Any:
    info = zf.getinfo(name)
    if info.file_size > limits.max_json_bytes:
        raise HygieneError(
            path, "zip", f"{name} declares {info.file_size} bytes (limit {limits.max_json_bytes})"
        )
    try:
        with zf.open(info) as fh:
            data = fh.read(limits.max_json_bytes + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise ArtifactError(path, "zip", f"cannot read {name} from the archive: {exc}") from None
    return parse_json(data, f"{name} in the archive", path)


def open_keras(path: Path, limits: Limits, stack: contextlib.ExitStack) -> Artifact:
    import h5py

    p = path
    size = p.stat().st_size
    fh = stack.enter_context(open(p, "rb"))  # noqa: SIM115 (closed by the stack)
    try:
        zf = stack.enter_context(zipfile.ZipFile(fh))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as exc:
        raise ArtifactError(p, "zip", f"not a readable zip archive: {exc}") from None
    artifact = Artifact(path=p, format=FORMAT_KERAS, file_size=size, zip=zf, zip_file=fh)
    artifact.parts = [Part(p.name, "archive", size, link_of(p))]
    artifact.zip_members = check_zip(zf, p, limits)
    names = {m.name for m in artifact.zip_members}
    if len(names) != len(artifact.zip_members):
        counts = collections.Counter(m.name for m in artifact.zip_members)
        twice = sorted(name for name, n in counts.items() if n > 1)
        raise HygieneError(p, "zip", f"duplicate member names: {', '.join(map(repr, twice))}")
    if KERAS_ZIP_CONFIG not in names:
        raise ArtifactError(p, "format", "a zip without config.json is not a .keras archive")
    artifact.config = _json_member(zf, KERAS_ZIP_CONFIG, p, limits)
    artifact.configs.append((KERAS_ZIP_CONFIG, artifact.config))
    if KERAS_ZIP_METADATA in names:
        metadata = _json_member(zf, KERAS_ZIP_METADATA, p, limits)
        if isinstance(metadata, dict):
            artifact.metadata = metadata
            artifact.keras_version = text(metadata.get("keras_version"))
    if isinstance(artifact.config, dict):
        artifact.training_config = artifact.config.get("compile_config")
    if KERAS_ZIP_WEIGHTS in names:
        info = zf.getinfo(KERAS_ZIP_WEIGHTS)
        if info.compress_type == zipfile.ZIP_STORED:
            raw: Any = stored_member_window(fh, info, p)
        else:
            artifact.notes.append(
                f"{KERAS_ZIP_WEIGHTS} is compressed; Keras stores it uncompressed"
            )
            raw = stack.enter_context(zf.open(info))
        try:
            if info.file_size <= IN_MEMORY_WEIGHTS_BYTES:
                f = open_image(raw.read(), f"{p}/{KERAS_ZIP_WEIGHTS}")
            else:
                f = h5py.File(raw, "r")
            stack.enter_context(f)
        except H5_ERRORS as exc:
            raise ArtifactError(
                p, "hdf5", f"{KERAS_ZIP_WEIGHTS} inside the archive is not HDF5: {exc}"
            ) from None
        use_weights_file(artifact, f, KERAS_ZIP_WEIGHTS, limits)
    elif KERAS_ZIP_WEIGHTS_NPZ in names:
        artifact.notes.append(NPZ_NOTE)
        artifact.weights_unread = NPZ_NOTE
    else:
        artifact.notes.append(f"the archive has no {KERAS_ZIP_WEIGHTS}")
    return artifact


#: what a reader says of weights saved with ``weights_format="npz"``
NPZ_NOTE = (
    f"the weights are stored as {KERAS_ZIP_WEIGHTS_NPZ} (weights_format='npz'): NumPy pickles "
    "each layer's variables, so their values are not read here (the safety scan inspects "
    "the pickles without running them)"
)
