"""The zip container scan: member names, duplicates, overlaps, compression and bombs, from the
central directory and each member's local header, without extracting anything.
"""

from __future__ import annotations

import itertools
import os
import posixpath
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from pytest_kerasmodel.artifacts.ziplocal import read_local_header
from pytest_kerasmodel.safety.base import Finding
from pytest_kerasmodel.safety.rules import ZIP_BOMB_FLOOR, ZIP_MAX_MEMBERS, ZIP_MAX_RATIO

_KERAS_MEMBERS = frozenset(
    {"config.json", "metadata.json", "model.weights.h5", "model.weights.npz"}
)


def _bad_name(name: str) -> str | None:
    if not name:
        return "empty member name"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if "\\" in name:
        return "backslash in member name (a Windows path separator)"
    if "\x00" in name:
        return "NUL byte in member name"
    if ".." in name.split("/"):
        return "'..' component: extracting it would write outside the target folder"
    return None


def _zip_findings(zf: zipfile.ZipFile, raw: IO[bytes], label: str) -> list[Finding]:
    findings: list[Finding] = []
    infos = zf.infolist()

    def add(check: str, member: str, reason: str) -> None:
        findings.append(Finding(check, f"{label}zip member {member!r}", reason))

    if len(infos) > ZIP_MAX_MEMBERS:
        findings.append(
            Finding(
                "zip-member-count",
                f"{label}zip",
                f"{len(infos)} members; a Keras archive holds a handful (limit {ZIP_MAX_MEMBERS})",
            )
        )
        return findings

    seen: dict[str, str] = {}
    for info in infos:
        name = info.filename
        problem = _bad_name(info.orig_filename if hasattr(info, "orig_filename") else name)
        if problem:
            add("zip-path", name, problem)
        normal = posixpath.normpath(name).lower()
        if normal in seen:
            add(
                "zip-duplicate",
                name,
                f"a second member with the name {seen[normal]!r}: readers disagree on which "
                "one counts, so what is scanned may not be what is loaded",
            )
        else:
            seen[normal] = name
        if info.flag_bits & 0x1:
            add(
                "zip-encrypted",
                name,
                "encrypted: its content cannot be read without a password, so nothing in it was "
                "scanned (Keras never writes encrypted archives)",
            )
        is_asset = name.startswith("assets/")
        if name not in _KERAS_MEMBERS and not is_asset and not problem:
            add(
                "zip-unexpected-member",
                name,
                "not a member Keras writes (config.json, metadata.json, model.weights.h5 or "
                "assets/...)",
            )
        if info.compress_type != zipfile.ZIP_STORED and not info.is_dir():
            add(
                "zip-compressed",
                name,
                f"compressed (method {info.compress_type}) while Keras stores members "
                "uncompressed: the archive was rewritten by another tool",
            )
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            add(
                "zip-bomb",
                name,
                f"stored member declares {info.file_size} bytes but stores {info.compress_size}",
            )
        elif info.file_size > ZIP_BOMB_FLOOR and info.file_size > ZIP_MAX_RATIO * max(
            info.compress_size, 1
        ):
            add(
                "zip-bomb",
                name,
                f"declares {info.file_size} bytes uncompressed from {info.compress_size} "
                f"stored (more than {ZIP_MAX_RATIO}x): a decompression bomb",
            )

    # Local headers: each member's bytes must be where the central directory says, and no two
    # members may share bytes (the "quoted overlap" zip bomb reuses one stream many times).
    ranges: list[tuple[int, int, str]] = []
    end_of_data = getattr(zf, "start_dir", None)
    for info in infos:
        header = read_local_header(raw, info.header_offset)
        if header is None:
            add("zip-header-mismatch", info.filename, "no local file header at its offset")
            continue
        method, local_name = header.method, header.name
        if method != info.compress_type:
            add(
                "zip-header-mismatch",
                info.filename,
                f"local header says compression method {method}, central directory says "
                f"{info.compress_type}",
            )
        if local_name.decode("utf-8", "replace") != info.orig_filename:
            add(
                "zip-header-mismatch",
                info.filename,
                f"local header names it {local_name.decode('utf-8', 'replace')!r}: two readers "
                "would see two different archives",
            )
        start = info.header_offset
        end = header.data_start + info.compress_size
        ranges.append((start, end, info.filename))
    ranges.sort()
    for (_, end, name), (next_start, _, next_name) in itertools.pairwise(ranges):
        if next_start < end:
            add(
                "zip-overlap",
                next_name,
                f"its bytes start inside member {name!r} (overlapping members: the "
                "quoted-overlap zip bomb)",
            )
    if ranges and isinstance(end_of_data, int) and ranges[-1][1] > end_of_data:
        add(
            "zip-overlap",
            ranges[-1][2],
            "its data runs into the central directory",
        )
    return findings


def scan_zip(path_or_zipfile: str | os.PathLike[str] | zipfile.ZipFile) -> list[Finding]:
    """Scan a ``.keras`` zip container (not its contents) without extracting anything."""
    if isinstance(path_or_zipfile, zipfile.ZipFile):
        fp = path_or_zipfile.fp
        if fp is None:
            raise ValueError("the ZipFile is closed")
        return _zip_findings(path_or_zipfile, fp, "")
    return with_zip(Path(path_or_zipfile), lambda zf, raw: _zip_findings(zf, raw, ""))


def with_zip(
    path: Path, scan: Callable[[zipfile.ZipFile, IO[bytes]], list[Finding]]
) -> list[Finding]:
    """``scan(zf, raw)`` on the archive at ``path`` (``raw``: the open file, for reading local
    headers); an archive zipfile cannot open is an ``unreadable`` finding."""
    with open(path, "rb") as raw:
        try:
            zf = zipfile.ZipFile(raw)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
            return [Finding("unreadable", "zip", f"not a readable zip archive: {error}")]
        with zf:
            return scan(zf, raw)
