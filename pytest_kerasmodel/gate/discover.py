"""Which paths under a model folder are Keras artifacts, as the artifact registry says.

The layouts decide from content and structure (:mod:`pytest_kerasmodel.artifacts`); this
module walks a folder with them, one level at a time, the way the gate's collectors do, and says
of every file whether an artifact holds it (a folder layout's files, a manifest's shards), the
gate itself wrote it (goldens, sidecars), or nothing reads it: those are "not checked", never
silently passed over. Symbolic links are followed where they lead (Hugging Face caches, DVC and
git-annex stores are folders of links) and keep their own path; a broken link, a link loop or a
FIFO is an artifact of its own whose integrity check fails naming it.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pytest_kerasmodel import artifacts
from pytest_kerasmodel.errors import ArtifactError

#: files the gate reads or writes beside an artifact (goldens, sidecars), and the fixture's goldens
GATE_FILE_SUFFIXES = (
    ".golden.json",
    ".golden.npz",
    ".inputs.npz",
    ".budget.json",
    ".keras-golden.json",
    ".source",
    ".sig",  # an OMS signature beside its artifact, or model.sig inside a folder (provenance)
    "kerasmodel.lock.json",  # the lock of approved artifacts (kerasmodel lock)
)
#: files no check reads but no one would call model content: pytest's own and Python's caches
_BOOKKEEPING = ("__pycache__", "conftest.py")

ARTIFACT, FOLDER, UNCHECKED = "artifact", "folder", "unchecked"


@dataclass(frozen=True)
class Entry:
    """One thing in a folder: an artifact (a file or a folder layout), a plain folder to walk
    into, or a file that no artifact holds ("unchecked"). ``problem``: why an artifact cannot
    be read at all (a broken link, a FIFO), for its integrity check to say."""

    path: Path
    kind: str
    problem: str = ""
    unowned: tuple[Path, ...] = ()  # files inside a folder artifact that its layout does not read


@dataclass
class Discovery:
    artifacts: list[Path] = field(default_factory=list)
    unchecked: list[Path] = field(default_factory=list)


def _hidden(name: str) -> bool:
    return name.startswith(".")


def is_gate_file(path: Path) -> bool:
    return path.name.lower().endswith(GATE_FILE_SUFFIXES)


def _files_under(folder: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d) and d not in _BOOKKEEPING)
        found.extend(Path(dirpath) / n for n in filenames)
    return sorted(found)


def _artifact_folder(path: Path) -> Entry:
    owned = set(artifacts.owned_files(path))
    unowned = tuple(f for f in _files_under(path) if f not in owned and not is_gate_file(f))
    return Entry(path, ARTIFACT, unowned=unowned)


def scan_folder(folder: Path, elsewhere: frozenset[Path] = frozenset()) -> list[Entry]:
    """The entries of one folder, sorted by name (every pytest-xdist worker sees the same).
    ``elsewhere``: files (resolved) that an artifact elsewhere holds through its links."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    paths = [folder / n for n in names if not (_hidden(n) and (folder / n).is_dir())]
    entries: dict[Path, Entry] = {}
    claimed: set[Path] = set()
    # manifests (and OpenVINO graphs) first: the shards (the .bin) they name are their parts,
    # not artifacts of their own
    for path in paths:
        if path.is_file() and (artifacts.sharded.claims(path) or artifacts.openvinoir.claims(path)):
            entries[path] = Entry(path, ARTIFACT)
            claimed.update(artifacts.owned_files(path))
    for path in paths:
        if path in entries or path in claimed or path.name in _BOOKKEEPING:
            continue
        if elsewhere and not path.is_dir() and real_path(path) in elsewhere:
            continue  # a blob a Hugging Face snapshot links to: gated through the snapshot
        try:
            artifacts.check_path_kind(path)
        except ArtifactError as error:
            entries[path] = Entry(path, ARTIFACT, problem=error.reason)
            continue
        if path.is_dir():
            if artifacts.layout_of(path) is not None:
                entries[path] = _artifact_folder(path)
            else:
                entries[path] = Entry(path, FOLDER)
        elif is_gate_file(path):
            continue
        elif path.name.lower().endswith(artifacts.ARTIFACT_SUFFIXES) or (
            artifacts.layout_of(path) is not None
        ):
            entries[path] = Entry(path, ARTIFACT)
        else:
            entries[path] = Entry(path, UNCHECKED)
    return [entries[p] for p in paths if p in entries]


def walk(model_dirs: Iterable[Path]) -> Iterator[Entry]:
    """Every artifact and unchecked file under the folders, depth first in name order; folders
    reached twice (a link back up the tree) are walked once, and a file that an artifact of
    several files reaches through a link (the blob store of a Hugging Face cache) is gated
    through that artifact only."""
    for root in model_dirs:
        if not root.is_dir():
            continue
        if artifacts.layout_of(root) is not None:
            entry = _artifact_folder(root)
            yield entry
            yield from (Entry(f, UNCHECKED) for f in entry.unowned)
            continue
        yield from _walk(root, set(), held_through_links(root))


def _walk(folder: Path, seen: set[Path], elsewhere: frozenset[Path]) -> Iterator[Entry]:
    real = folder.resolve()
    if real in seen:
        return
    seen.add(real)
    for entry in scan_folder(folder, elsewhere):
        if entry.kind == FOLDER:
            yield from _walk(entry.path, seen, elsewhere)
        else:
            yield entry
            unowned = (f for f in entry.unowned if real_path(f) not in elsewhere)
            yield from (Entry(f, UNCHECKED) for f in unowned)


def real_path(path: Path) -> Path:
    """Where ``path`` leads; itself for a link loop (which its integrity check reports)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: Python 3.11's "Symlink loop"
        return path


def held_through_links(model_dir: Path) -> frozenset[Path]:
    """The files (resolved) that links inside a folder artifact, or the shards of a manifest,
    under ``model_dir`` lead to. Only links are looked at more closely, so a folder without any
    costs one ``lstat`` per file."""
    held: set[Path] = set()
    is_owner: dict[Path, bool] = {}

    def owner_of(folder: Path) -> Path | None:
        while True:
            if folder not in is_owner:
                is_owner[folder] = artifacts.layout_of(folder) is not None
            if is_owner[folder]:
                return folder
            if folder == model_dir or model_dir not in folder.parents:
                return None
            folder = folder.parent

    for dirpath, dirnames, filenames in os.walk(model_dir):
        dirnames[:] = [d for d in dirnames if not _hidden(d)]
        here = Path(dirpath)
        links = [here / n for n in filenames if (here / n).is_symlink() and (here / n).exists()]
        if not links:
            continue
        if owner_of(here) is not None:
            held.update(real_path(link) for link in links)
            continue
        for name in filenames:
            manifest = here / name
            if manifest.is_file() and artifacts.sharded.claims(manifest):
                shards = set(artifacts.owned_files(manifest)[1:])
                held.update(real_path(link) for link in links if link in shards)
    return frozenset(held)


def discover(model_dirs: Iterable[Path], test_patterns: Iterable[str] = ()) -> Discovery:
    """The artifacts and the unchecked files under the folders. ``test_patterns``: pytest's
    ``python_files`` globs; a file pytest collects as a test module is not "unchecked"."""
    patterns = tuple(test_patterns)
    found = Discovery()
    for entry in walk(model_dirs):
        if entry.kind == ARTIFACT:
            found.artifacts.append(entry.path)
        elif not any(fnmatch.fnmatch(entry.path.name, p) for p in patterns):
            found.unchecked.append(entry.path)
    return found


def find_artifacts(model_dirs: Iterable[Path]) -> list[Path]:
    """Every artifact under the folders, recursively, in the gate's order."""
    return discover(model_dirs).artifacts


def model_dir_of(path: Path, model_dirs: Iterable[Path]) -> Path | None:
    """The model folder (from ``--keras-model-dir``) that ``path`` lies in, if any. Judged on
    the path as given (absolute, links kept), so an artifact reached through a link into a
    store elsewhere still belongs to the folder that holds the link."""
    given = Path(os.path.abspath(path))
    for directory in model_dirs:
        if given == directory or given.is_relative_to(directory):
            return directory
    return None
