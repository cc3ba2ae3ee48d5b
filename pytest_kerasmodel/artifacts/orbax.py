"""Reader: an Orbax checkpoint folder (``keras.callbacks.OrbaxCheckpoint``), detected and
named with Keras's own rule (``keras.src.saving.orbax_util.is_orbax_checkpoint``); its arrays
are not read, and the gate says so instead of vouching for them."""

from __future__ import annotations

import contextlib
from pathlib import Path

from pytest_kerasmodel.artifacts.base import FORMAT_ORBAX, Artifact, Limits, Part, link_of

NAME = "orbax"
INDICATORS = ("orbax.checkpoint", "pytree.orbax-checkpoint", "checkpoint_metadata")


def claims(path: Path) -> bool:
    if not path.is_dir():
        return False
    try:
        names = [p.name for p in path.iterdir()]
    except OSError:
        return False
    if any(name in INDICATORS or ".orbax-checkpoint-tmp" in name for name in names):
        return True
    steps = [path / n for n in names if n.isdigit() and (path / n).is_dir()]
    return any(
        any(
            child.name in INDICATORS or child.name.startswith("_CHECKPOINT_METADATA")
            for child in step.iterdir()
        )
        for step in steps
    )


def owned_files(path: Path) -> list[Path]:
    return sorted(f for f in path.rglob("*") if not f.is_dir())


def open_orbax(path: Path, limits: Limits, stack: contextlib.ExitStack) -> Artifact:
    files = [f for f in owned_files(path) if f.is_file()]
    parts = [
        Part(f.relative_to(path).as_posix(), "orbax", f.stat().st_size, link_of(f)) for f in files
    ]
    return Artifact(
        path=path,
        format=FORMAT_ORBAX,
        file_size=sum(p.size for p in parts),
        parts=parts,
        link=link_of(path),
        notes=[
            f"an Orbax checkpoint of {len(parts)} file(s): detected and named only; "
            "its arrays are not read, so nothing in it is vouched for"
        ],
    )
