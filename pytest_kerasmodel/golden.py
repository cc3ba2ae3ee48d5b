"""Golden files: versioned JSON, written atomically, read with a version check.

A golden file is ``{"golden_format": "pytest-kerasmodel", "golden_version": N, "kind": ...,
"entries": {key: payload}}``. Writes go to a temporary file in the same folder, then
``os.replace`` moves it into place, so an interrupted write leaves the previous golden intact.
An older ``golden_version`` is not compared (the diff would be a mystery): reading it says
"regenerate with --keras-update-golden".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_kerasmodel.diff import Diff, jsonable
from pytest_kerasmodel.errors import GoldenError

GOLDEN_FORMAT = "pytest-kerasmodel"
GOLDEN_VERSION = 1
UPDATE_HINT = "regenerate with --keras-update-golden"


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically: temp file in the same folder + os.replace."""
    text = json.dumps(jsonable(data), indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    write_text_atomic(path, text)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically: temp file in the same folder + os.replace."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode(target))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def file_mode(target: Path) -> int:
    """The mode a golden gets: the previous golden's, else what ``open()`` would create.

    ``mkstemp`` creates its file 0600; a golden is committed and shared like any other file.
    """
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@dataclass
class GoldenDiff(Diff):
    """Why a golden check failed: missing, outdated, unreadable, or the artifact differs."""

    golden: str
    key: str
    reason: str  # "missing", "outdated", "unreadable", "differs"
    detail: str = ""
    structure: Any = None  # a StructureDiff when reason == "differs"
    changes: list[Any] = field(default_factory=list)

    def is_empty(self) -> bool:
        return False

    def render(self) -> str:
        if self.reason == "missing":
            return (
                f"no golden recorded for {self.key!r} in {self.golden}\n"
                "  record it with: pytest --keras-update-golden (then review and commit the file)"
            )
        if self.reason == "differs" and self.structure is not None:
            return (
                f"{self.structure.render()}\n"
                f"  golden: {self.golden} [{self.key}]\n"
                "  if the change is intended, update it with: pytest --keras-update-golden"
            )
        return f"golden {self.golden} [{self.key}]: {self.detail}; {UPDATE_HINT}"


def _outdated(path: Path, detail: str) -> GoldenError:
    return GoldenError(GoldenDiff(str(path), "*", "outdated", detail))


def load_golden_file(path: str | os.PathLike[str], *, kind: str | None = None) -> dict[str, Any]:
    """A golden file's entries; GoldenError (reason "outdated") when its version is not ours."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise GoldenError(
            GoldenDiff(str(p), "*", "unreadable", f"not a readable JSON file ({exc})")
        ) from None
    if not isinstance(data, dict) or data.get("golden_format") != GOLDEN_FORMAT:
        raise _outdated(p, "not a pytest-kerasmodel golden file")
    version = data.get("golden_version")
    if version != GOLDEN_VERSION:
        raise _outdated(
            p, f"written with golden format version {version}, this plugin reads {GOLDEN_VERSION}"
        )
    if kind is not None and data.get("kind") != kind:
        raise _outdated(p, f"holds {data.get('kind')!r} goldens, not {kind!r}")
    entries = data.get("entries")
    if not isinstance(entries, dict):
        raise _outdated(p, "has no entries")
    return entries


def golden_document(kind: str, entries: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "golden_format": GOLDEN_FORMAT,
        "golden_version": GOLDEN_VERSION,
        "kind": kind,
        "entries": dict(sorted(entries.items())),
    }


def read_golden(path: str | os.PathLike[str], key: str | None = None) -> dict[str, Any]:
    """A description stored in a golden file: the only entry, or the one under ``key``.

    A bare description JSON (as written by ``inspect --json``) is accepted too.
    """
    p = Path(path)
    data = json.loads(p.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "golden_format" not in data and "weights" in data:
        return data
    entries = load_golden_file(p)
    if key is None:
        if len(entries) != 1:
            raise ValueError(f"{p} holds {len(entries)} goldens; name the one to use")
        return next(iter(entries.values()))
    return entries[key]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of one golden file across processes (xdist workers)."""
    # the lock lives in the temporary folder, not beside the golden: nothing litters the repo
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    lock = Path(tempfile.gettempdir()) / f"pytest-kerasmodel-golden-{digest}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: os.replace keeps each write whole
        yield
        return
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def update_golden_entry(
    path: str | os.PathLike[str], kind: str, key: str, payload: Any
) -> str | None:
    """Record ``payload`` under ``key``; returns "recorded", "updated" or None (unchanged)."""
    p = Path(path)
    with _locked(p):
        try:
            entries = load_golden_file(p, kind=kind)
        except (FileNotFoundError, GoldenError):
            entries = {}
        payload = jsonable(payload)
        old = entries.get(key)
        if old == payload:
            return None
        entries[key] = payload
        write_json_atomic(p, golden_document(kind, entries))
        return "updated" if old is not None else "recorded"
