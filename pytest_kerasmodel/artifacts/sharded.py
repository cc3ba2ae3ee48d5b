"""Reader: sharded Keras 3 weights.

``model.save_weights("w.weights.json", max_shard_size=...)`` (Keras >= 3.10; KerasHub's
``save_to_preset`` for large backbones) writes a JSON manifest, ``{"metadata": {"total_size":
...}, "weight_map": {"/layers/dense/vars": ["w_00000.weights.h5"], ...}}``, and the shards it
names beside it. The manifest is the artifact and the shards are its parts: each shard is
walked like any HDF5 file, and the model's weights are the union of the shards' trees, so a
model's weights carry the same names sharded or not.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from pytest_kerasmodel.artifacts.base import (
    FORMAT_SHARDED,
    Artifact,
    HygieneError,
    Limits,
    Part,
    check_part_kind,
    inside,
    link_of,
    read_json_file,
)
from pytest_kerasmodel.artifacts.hdf5 import H5Node, open_store
from pytest_kerasmodel.errors import ArtifactError

NAME = "sharded-weights"
SUFFIX = ".weights.json"
_MANIFEST_PROBE_BYTES = 4096


def claims(path: Path) -> bool:
    """A ``.json`` file whose top level holds a ``weight_map`` (read from its first bytes)."""
    if not path.is_file() or not path.name.lower().endswith(".json"):
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(_MANIFEST_PROBE_BYTES)
    except OSError:
        return False
    return b'"weight_map"' in head


def shard_names(manifest: Any) -> list[str]:
    """The shard file names a manifest's weight map names, in order of first mention."""
    weight_map = manifest.get("weight_map") if isinstance(manifest, dict) else None
    if not isinstance(weight_map, dict):
        return []
    names: dict[str, None] = {}
    for files in weight_map.values():
        for name in [files] if isinstance(files, str) else files if isinstance(files, list) else []:
            if isinstance(name, str):
                names.setdefault(name, None)
    return list(names)


def read_manifest(path: Path, limits: Limits) -> Any:
    manifest = read_json_file(path, path.name, path, limits)
    weight_map = manifest.get("weight_map") if isinstance(manifest, dict) else None
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, (str, list)) for k, v in weight_map.items()
    ):
        raise ArtifactError(
            path, "manifest", "weight_map is not an object of group path -> shard file names"
        )
    return manifest


def shard_paths(path: Path, manifest: Any) -> list[Path]:
    """The shards' paths, each checked to lie beside the manifest: a name leading elsewhere
    (``../x.weights.h5``, an absolute path) is refused before anything is opened."""
    paths = []
    for name in shard_names(manifest):
        where = inside(path.parent, name)
        if where is None or where.parent != path.parent:
            raise HygieneError(
                path,
                "manifest",
                f"the manifest names the shard {name!r}, which is not a file beside it: "
                "loading it would read a file outside the artifact",
            )
        paths.append(where)
    return paths


def owned_files(path: Path) -> list[Path]:
    """The manifest and the shards it names that lie beside it (for discovery: no errors)."""
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return [path]
    found = [path]
    for name in shard_names(manifest):
        where = inside(path.parent, name)
        if where is not None and where.parent == path.parent:
            found.append(where)
    return found


def merge(stores_nodes: list[list[H5Node]], path: Path) -> list[H5Node]:
    """One tree from the shards' trees: groups once (the first shard's root and attributes),
    every dataset from the shard that holds it; a dataset in two shards is refused."""
    merged: dict[str, H5Node] = {}
    for nodes in stores_nodes:
        for node in nodes:
            seen = merged.get(node.path)
            if seen is None:
                merged[node.path] = node
            elif node.kind == "dataset" or seen.kind == "dataset":
                raise HygieneError(
                    path, "manifest", f"/{node.path} is stored in more than one shard"
                )
    return sorted(merged.values(), key=lambda n: n.path.split("/")) if merged else []


def open_sharded(path: Path, limits: Limits, stack: contextlib.ExitStack) -> Artifact:

    manifest = read_manifest(path, limits)
    shards = shard_paths(path, manifest)
    artifact = Artifact(path=path, format=FORMAT_SHARDED, file_size=path.stat().st_size)
    artifact.link = link_of(path)
    artifact.metadata = (
        manifest.get("metadata") if isinstance(manifest.get("metadata"), dict) else {}
    )
    artifact.parts = [Part(path.name, "manifest", artifact.file_size, artifact.link)]
    for shard in shards:
        if shard.exists() or shard.is_symlink():  # a FIFO or a broken link is not "missing"
            check_part_kind(path, shard, f"the shard {shard.name!r}")
        if not shard.is_file():
            raise ArtifactError(path, "manifest", f"the shard {shard.name!r} it names is missing")
        open_store(artifact, shard, shard.name, stack, limits, what=f"shard {shard.name!r}")
        size = shard.stat().st_size
        artifact.parts.append(Part(shard.name, "shard", size, link_of(shard)))
        artifact.file_size += size
    artifact.nodes = merge([s.nodes for s in artifact.stores], path)
    if artifact.stores:
        artifact.weights_root = artifact.stores[0].h5
        artifact.h5 = artifact.stores[0].h5
    _check_weight_map(artifact, manifest)
    return artifact


def _check_weight_map(artifact: Artifact, manifest: dict[str, Any]) -> None:
    """Each group the weight map names is in a shard it names (else Keras finds no weights)."""
    by_label = {s.label: {n.path for n in s.nodes} for s in artifact.stores}
    for group, files in manifest["weight_map"].items():
        names = [files] if isinstance(files, str) else files
        key = group.strip("/")
        if not any(key in by_label.get(name, ()) for name in names if isinstance(name, str)):
            artifact.notes.append(f"the manifest maps {group!r} to {names}, which do not hold it")
