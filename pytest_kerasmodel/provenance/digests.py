"""The parts of an artifact and their digests, read once.

The parts are named as the OpenSSF Model Signing (OMS) manifest names them: a file artifact is
one part named ``"."``; a folder's parts are its files by their path inside it (``/``
separated). A symbolic link inside a folder is never followed: it is reported as a part that
cannot be vouched for, so a file swapped for a link fails whatever the link points at.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pytest_kerasmodel import artifacts
from pytest_kerasmodel.errors import ArtifactError

#: bytes read at once; large enough that hashing, not system calls, is the cost
CHUNK = 1 << 20
#: what a folder holds that no signature or lock covers (model-signing's defaults)
GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
SELF = "."
#: what the lock leaves out of a folder: git's files and the folder's own signature
#: (``model.sig``, provenance rather than model content, left out by the signature too)
LOCK_IGNORE = (*GIT_PATHS, "model.sig")


@dataclass
class Parts:
    """An artifact's parts: ``digests`` (part -> SHA-256 hex), ``links`` (parts that are
    symbolic links, never followed) and ``bytes_read`` (what the one pass read)."""

    digests: dict[str, str] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)
    bytes_read: int = 0


@dataclass
class PartsDiff:
    """What differs between the parts approved (signed or locked) and the parts on disk."""

    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changed or self.added or self.removed or self.links)

    def lines(self, limit: int = 20) -> list[str]:
        """One line per part, capped at ``limit`` per kind (the count said)."""
        out: list[str] = []
        for label, names in (
            ("changed", self.changed),
            ("added", self.added),
            ("removed", self.removed),
            ("a symbolic link (never followed)", self.links),
        ):
            for name in names[:limit]:
                out.append(f"{label}: {name}")
            if len(names) > limit:
                out.append(f"{label}: ... and {len(names) - limit} more")
        return out


def is_ignored(name: str, ignore: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p.rstrip("/") + "/") for p in ignore)


def hash_file(path: Path) -> tuple[str, int]:
    """SHA-256 hex of ``path`` and its size, read in :data:`CHUNK` pieces (no ``mmap``: a file
    that shrinks under us is an error, not a crash)."""
    digest = hashlib.sha256()
    read = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buffer):
            digest.update(view[:n])
            read += n
    return digest.hexdigest(), read


def members(path: Path, ignore: Iterable[str] = (), *, check: str = "signature") -> Parts:
    """The parts of the artifact at ``path`` by name, digests not yet read (``digests`` maps
    each name to its file's path): a folder's files; a file's own name ``"."``; the manifest
    and shards (or graph and weights) of a file that holds others, by their path beside it.
    Raises :class:`ArtifactError` (naming ``check``) for what cannot be listed."""
    ignore = tuple(ignore)
    parts = Parts()
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            base = Path(root)
            dirs.sort()
            for name in list(dirs):
                rel = (base / name).relative_to(path).as_posix()
                if is_ignored(rel, ignore):
                    dirs.remove(name)
                elif (base / name).is_symlink():
                    dirs.remove(name)
                    parts.links.append(rel)
            for name in sorted(files):
                full = base / name
                rel = full.relative_to(path).as_posix()
                if is_ignored(rel, ignore):
                    continue
                if full.is_symlink():
                    parts.links.append(rel)
                elif not full.is_file():
                    raise ArtifactError(full, check, "not a regular file (a FIFO or device)")
                else:
                    parts.digests[rel] = str(full)
    elif path.is_file():
        owned = [p for p in artifacts.owned_files(path) if p != path]
        if not owned:
            parts.digests[SELF] = str(path)
        else:
            for full in [path, *owned]:
                rel = Path(os.path.relpath(full, path.parent)).as_posix()
                if full.is_symlink() and full != path:
                    parts.links.append(rel)
                elif full.is_file():
                    parts.digests[rel] = str(full)
                # a part the manifest names but that is gone: absent, so reported removed
    elif path.exists() or path.is_symlink():
        raise ArtifactError(path, check, "neither a regular file nor a folder")
    else:
        raise ArtifactError(path, check, "no such file or folder")
    parts.links.sort()
    return parts


def base_of(path: Path) -> Path:
    """What the part names are relative to: a folder artifact itself, else the file's folder
    (for a file that holds no other, its one part is ``"."``)."""
    return path if path.is_dir() else path.parent


def read_parts(path: Path, ignore: Iterable[str] = (), *, check: str = "signature") -> Parts:
    """Every part of the artifact at ``path`` (:func:`members`) with its SHA-256, each byte
    read once. Raises :class:`ArtifactError` (naming ``check``) for what cannot be read."""
    parts = members(path, ignore, check=check)
    try:
        for name, file in list(parts.digests.items()):
            parts.digests[name], n = hash_file(Path(file))
            parts.bytes_read += n
    except OSError as exc:
        raise ArtifactError(path, check, f"cannot be read: {exc}") from None
    return parts


def compare(approved: dict[str, str], parts: Parts) -> PartsDiff:
    """What differs between ``approved`` (part -> digest) and ``parts`` read from disk."""
    on_disk = parts.digests
    return PartsDiff(
        changed=sorted(n for n in approved if n in on_disk and on_disk[n] != approved[n]),
        added=sorted(n for n in on_disk if n not in approved),
        removed=sorted(n for n in approved if n not in on_disk and n not in parts.links),
        links=list(parts.links),
    )
