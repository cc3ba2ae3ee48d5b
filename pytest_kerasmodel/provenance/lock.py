"""The lock of approved artifacts: every part of every approved artifact and its SHA-256, in one
file, for teams that check provenance without a signing key.

The format is an unsigned in-toto Statement v1 (https://in-toto.io/Statement/v1), the statement
an OMS signature signs: ``subject`` lists every part as a ResourceDescriptor
(``{"name": "<artifact>/<part>", "digest": {"sha256": ...}}``), so any in-toto tool (or
``jq`` and ``sha256sum``) can check it; ``predicate`` groups the parts by artifact and carries
the lock's format version. Artifacts are named by their path relative to the lock file's folder,
so a lock committed beside the models holds in every checkout. Written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_kerasmodel.errors import KerasModelError
from pytest_kerasmodel.provenance import digests
from pytest_kerasmodel.provenance.digests import LOCK_IGNORE, Parts, PartsDiff

CHECK = "lock"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://pypi.org/project/pytest-kerasmodel/lock/v1"
LOCK_FORMAT = 1
HOW_TO_UPDATE = "if the change is approved, update the lock (--keras-update-lock, kerasmodel lock)"


class LockError(KerasModelError):
    """The lock file cannot be read or written: names the file and why."""


@dataclass
class Lock:
    """A lock read from ``path``: artifact (relative to the lock's folder) -> part -> digest."""

    path: Path
    artifacts: dict[str, dict[str, str]] = field(default_factory=dict)

    def name_of(self, artifact: Path) -> str:
        """``artifact``'s name in this lock: its path relative to the lock's folder."""
        base = os.path.abspath(self.path.parent)
        return Path(os.path.relpath(os.path.abspath(artifact), base)).as_posix()

    def path_of(self, name: str) -> Path:
        return self.path.parent / name

    def gone(self) -> list[str]:
        """The entries whose artifact is no longer on disk."""
        return sorted(n for n in self.artifacts if not os.path.lexists(self.path_of(n)))


@dataclass
class LockVerdict:
    """One artifact against the lock: ``status`` is ``locked`` (every part matches),
    ``changed`` or ``unlisted`` (not in the lock)."""

    status: str
    artifact: str
    lock: str
    name: str
    diff: PartsDiff = field(default_factory=PartsDiff)
    parts: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "locked"

    def message(self) -> str:
        if self.status == "locked":
            return f"locked: {self.parts} part(s) match {self.lock}"
        if self.status == "unlisted":
            return f"not in the lock {self.lock} (as {self.name}); {HOW_TO_UPDATE}"
        lines = "\n".join(f"  - {line}" for line in self.diff.lines())
        return f"changed since locked in {self.lock}:\n{lines}\n  {HOW_TO_UPDATE}"

    def details(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "lock": self.lock,
            "name": self.name,
            "changed": self.diff.changed,
            "added": self.diff.added,
            "removed": self.diff.removed,
            "links": self.diff.links,
        }


def read_parts(artifact: Path) -> Parts:
    """The parts a lock records: every file but git's (symbolic links named, not followed)."""
    return digests.read_parts(artifact, LOCK_IGNORE, check=CHECK)


def read_lock(path: str | os.PathLike[str]) -> Lock:
    """The lock at ``path``; raises :class:`LockError` naming it when it is not one."""
    where = Path(path)
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LockError(f"{where}: lock: no such file ({HOW_TO_UPDATE})") from None
    except (OSError, ValueError) as exc:
        raise LockError(f"{where}: lock: cannot be read as JSON: {exc}") from None
    predicate = data.get("predicate") if isinstance(data, dict) else None
    if (
        not isinstance(predicate, dict)
        or data.get("_type") != STATEMENT_TYPE
        or data.get("predicateType") != PREDICATE_TYPE
    ):
        raise LockError(
            f"{where}: lock: not a pytest-kerasmodel lock (an in-toto Statement v1 of "
            f"predicateType {PREDICATE_TYPE})"
        )
    if predicate.get("lock_format") != LOCK_FORMAT:
        raise LockError(
            f"{where}: lock: format {predicate.get('lock_format')!r}, this version reads "
            f"{LOCK_FORMAT}; write it again with kerasmodel lock"
        )
    entries = predicate.get("artifacts")
    if not isinstance(entries, dict) or not all(
        isinstance(parts, dict) and all(isinstance(d, str) for d in parts.values())
        for parts in entries.values()
    ):
        raise LockError(f"{where}: lock: 'artifacts' is not a map of artifact -> part -> digest")
    return Lock(where, {str(k): dict(v) for k, v in entries.items()})


def statement(artifacts: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """The lock document of ``artifacts`` (name -> part -> SHA-256), sorted: the same
    artifacts give the same bytes."""
    subject = []
    for name in sorted(artifacts):
        for part in sorted(artifacts[name]):
            full = name if part == digests.SELF else f"{name}/{part}"
            subject.append({"name": full, "digest": {"sha256": artifacts[name][part]}})
    return {
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "lock_format": LOCK_FORMAT,
            "artifacts": {n: dict(sorted(artifacts[n].items())) for n in sorted(artifacts)},
        },
    }


def write_lock_entries(
    path: str | os.PathLike[str], artifacts: Mapping[str, Mapping[str, str]]
) -> None:
    """Write the lock of ``artifacts`` to ``path`` atomically (temp file + ``os.replace``)."""
    from pytest_kerasmodel.golden import write_text_atomic

    text = json.dumps(statement(artifacts), indent=2) + "\n"
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise LockError(f"{path}: lock: cannot be written: {exc}") from None


@dataclass
class LockUpdate:
    """What an update changed in the lock, for the summary."""

    path: str
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: int = 0

    def line(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.changed)} changed"]
        parts.append(f"{len(self.removed)} removed (gone)")
        text = f"lock {self.path} updated: " + ", ".join(parts) + f", {self.kept} unchanged"
        names = [*self.added, *self.changed, *self.removed]
        if names:
            text += ": " + ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
        return text


def update_lock(
    path: str | os.PathLike[str], fresh: Mapping[Path, Mapping[str, str]]
) -> LockUpdate:
    """Record ``fresh`` (artifact -> part -> digest, read this run) in the lock at ``path``:
    their entries replaced, entries whose artifact is gone dropped, the others kept."""
    where = Path(path)
    old = read_lock(where) if where.exists() else Lock(where)
    entries = {n: p for n, p in old.artifacts.items() if os.path.lexists(old.path_of(n))}
    change = LockUpdate(str(where), removed=sorted(set(old.artifacts) - set(entries)))
    for artifact, parts in fresh.items():
        name = old.name_of(artifact)
        if name not in entries:
            change.added.append(name)
        elif entries[name] != dict(parts):
            change.changed.append(name)
        entries[name] = dict(parts)
    change.kept = len(entries) - len(change.added) - len(change.changed)
    write_lock_entries(where, entries)
    return change


def lock_artifacts(path: str | os.PathLike[str], artifacts: Iterable[Path]) -> LockUpdate:
    """``kerasmodel lock``: read every part of ``artifacts`` and record them in ``path``."""
    fresh: dict[Path, dict[str, str]] = {}
    for artifact in artifacts:
        parts = read_parts(artifact)
        if parts.links:
            raise LockError(
                f"{artifact}: lock: symbolic link(s) inside, never followed: "
                + ", ".join(parts.links)
            )
        fresh[artifact] = parts.digests
    return update_lock(path, fresh)


def compare_to_lock(lock: Lock, artifact: Path, parts: Parts) -> LockVerdict:
    """``artifact`` (its ``parts`` read from disk) against ``lock``."""
    name = lock.name_of(artifact)
    verdict = LockVerdict("unlisted", str(artifact), str(lock.path), name, parts=len(parts.digests))
    approved = lock.artifacts.get(name)
    if approved is None:
        return verdict
    verdict.diff = digests.compare(approved, parts)
    verdict.status = "changed" if verdict.diff else "locked"
    return verdict
