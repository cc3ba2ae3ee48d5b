"""Every dataset and attribute of an artifact's HDF5 files accounted for: what it is, or why it
was not read.

A verdict on a weights file is only as good as what it looked at: a reader that interprets
``layers/...`` and silently passes over ``d1/vars/0`` (a subclassed model's attribute layer)
vouches for values it never saw. :func:`account` sorts every dataset of every store of an opened
artifact into

- a **model variable** (named by :mod:`pytest_kerasmodel.artifacts.names`; these make the
  parameter count, which equals Keras's ``count_params()``),
- an **optimizer variable** (``optimizer/<i>``),
- a **metric variable** (state of a metric the trainer saved: tf.keras's ``metrics/...``),
- or **unread**: its HDF5 path and why it was not interpreted,

and every attribute into known Keras bookkeeping (a ``vars`` group's ``name``, legacy HDF5's
``layer_names`` / ``weight_names`` / ``model_config`` ...) or unread. Nothing here reads a
dataset's values: the finite scan reads every numeric dataset whatever its role.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_kerasmodel.artifacts import names as weightnames
from pytest_kerasmodel.artifacts.base import FORMAT_H5, FORMAT_H5_WEIGHTS

if TYPE_CHECKING:  # pragma: no cover
    from pytest_kerasmodel.artifacts.base import Artifact, H5Node

ROLE_WEIGHT = "weight"
ROLE_OPTIMIZER = "optimizer"
ROLE_METRIC = "metric"

# attributes Keras writes in legacy HDF5 (Keras 1 to 3, tf.keras), by where they sit
_LEGACY_ROOT_ATTRS = {"keras_version", "backend", "model_config", "training_config"}
_LEGACY_LIST_ATTR = re.compile(r"^(layer_names|weight_names)\d*$")
# the one attribute saving_lib writes in a Keras 3 weights file: a ``vars`` group's owner name
_KERAS_VARS_ATTRS = {"name"}


@dataclass(frozen=True)
class Unread:
    """A dataset or attribute of the file that no reader interpreted, and why."""

    path: str  # where: "/<HDF5 path>" or "<file>:/<HDF5 path>" (see hdf5_where); an
    # attribute: "<object>@<name>"
    kind: str  # "dataset" or "attribute"
    reason: str
    shape: tuple[int, ...] | None = None  # a dataset's
    dtype: str | None = None  # a dataset's

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": self.path, "kind": self.kind, "reason": self.reason}
        if self.kind == "dataset":
            entry["shape"] = list(self.shape or ())
            entry["dtype"] = self.dtype
        return entry


@dataclass
class Accounting:
    """What each dataset of an artifact is: model variables, optimizer and metric variables
    (name, HDF5 path), and everything unread."""

    weights: list[weightnames.NamedWeight] = field(default_factory=list)
    optimizer: list[tuple[str, str]] = field(default_factory=list)
    metrics: list[tuple[str, str]] = field(default_factory=list)
    unread: list[Unread] = field(default_factory=list)


def hdf5_where(artifact: Artifact, store: int, path: str) -> str:
    """How a dataset or attribute is named where no variable name applies: ``/path``, or
    ``<file>:/path`` when the artifact has several HDF5 files (shards, a preset's task)."""
    stores = artifact.stores
    if len(stores) > 1 and 0 <= store < len(stores) and stores[store].label:
        return f"{stores[store].label}:/{path}"
    return f"/{path}"


def account(artifact: Artifact) -> Accounting:
    """Every dataset and attribute of the artifact's weights files, interpreted or listed as
    unread. Reads metadata only (the checked tree the artifact was opened with)."""
    result = Accounting()
    if artifact.weights_root is None:
        return result
    result.weights = weightnames.model_weights(artifact)
    result.optimizer = weightnames.optimizer_weight_paths(artifact)
    legacy = artifact.format in (FORMAT_H5, FORMAT_H5_WEIGHTS)
    groups = {n.path: n for n in artifact.nodes if n.kind == "group"}
    if not legacy:
        result.metrics = _metric_paths(artifact.nodes, groups)
    _unread_of(artifact, result, legacy, groups)
    for component in artifact.components.values():  # a preset's task.weights.h5
        index = component.get("weights_store")
        if isinstance(index, int) and 0 <= index < len(artifact.stores):
            _unread_of(store_view(artifact, index), result, False, None)
    return result


def store_view(artifact: Artifact, index: int) -> Artifact:
    """One more HDF5 file of an artifact (a preset's ``task.weights.h5``) as a Keras 3
    weights file of its own, to account for it and name its weights alike (accounting here,
    a preset's components in :mod:`pytest_kerasmodel.structure.describe`)."""
    from pytest_kerasmodel.artifacts.base import FORMAT_WEIGHTS_H5, Artifact

    store = artifact.stores[index]
    return Artifact(
        path=artifact.path / store.label,
        format=FORMAT_WEIGHTS_H5,
        file_size=0,
        h5=store.h5,
        weights_root=store.h5,
        nodes=store.nodes,
        stores=artifact.stores,
    )


def _unread_of(
    artifact: Artifact, result: Accounting, legacy: bool, groups: dict[str, H5Node] | None
) -> None:
    """Add to ``result.unread`` what of ``artifact.nodes`` no reader interprets (for a
    component's store: what its own weights, optimizer and metrics do not cover)."""
    if groups is None:  # a component's store: its own names
        groups = {n.path: n for n in artifact.nodes if n.kind == "group"}
        known = {w.h5_path for w in weightnames.model_weights(artifact)}
        known.update(p for _, p in weightnames.optimizer_weight_paths(artifact))
        known.update(p for _, p in _metric_paths(artifact.nodes, groups))
    else:
        known = {w.h5_path for w in result.weights}
        known.update(p for _, p in result.optimizer)
        known.update(p for _, p in result.metrics)
    for node in artifact.nodes:
        where = hdf5_where(artifact, node.store, node.path)
        if node.kind == "dataset" and node.path not in known:
            reason = _legacy_reason(node) if legacy else _keras_reason(node, groups)
            result.unread.append(
                Unread(where, "dataset", reason, tuple(node.shape or ()), node.dtype)
            )
        if node.kind in ("group", "dataset"):
            for name in node.attrs:
                if not _known_attr(node, name, legacy):
                    result.unread.append(
                        Unread(
                            f"{where}@{name}", "attribute", "an attribute Keras does not write here"
                        )
                    )


def _metric_paths(nodes: list[H5Node], groups: dict[str, H5Node]) -> list[tuple[str, str]]:
    """Metric state a trainer saved (``metrics/<metric>/vars/<i>``), named
    ``metrics/<metric>/<i>`` (the metric's recorded name where saving_lib wrote one)."""
    found: list[tuple[str, str]] = []
    for node in nodes:
        if node.kind != "dataset" or node.path.split("/")[0] not in weightnames.METRIC_ROOTS:
            continue
        unit = weightnames.keras_unit(node.path, groups)
        if unit is None:
            continue
        owner = node.path.rsplit("/vars/", 1)[0]
        recorded = groups[f"{owner}/vars"].attrs.get("name")
        shown = str(recorded) if isinstance(recorded, str) and recorded else owner.split("/")[-1]
        root = node.path.split("/")[0]
        found.append((f"{root}/{shown}/{node.path.rsplit('/', 1)[1]}", node.path))
    return found


def _keras_reason(node: H5Node, groups: dict[str, H5Node]) -> str:
    if weightnames.keras_unit(node.path, groups) is None:
        return (
            "not a saved variable: Keras writes each object's variables as "
            "<object>/vars/<index>, and this dataset is not one"
        )
    return "a variable of an object that is neither a layer, the optimizer nor a metric"


def _legacy_reason(node: H5Node) -> str:
    return "not listed in any layer's weight_names nor in optimizer_weights: Keras does not load it"


def _known_attr(node: H5Node, name: str, legacy: bool) -> bool:
    if legacy:
        if node.path == "":
            return name in _LEGACY_ROOT_ATTRS or bool(_LEGACY_LIST_ATTR.match(name))
        if node.path == "model_weights":
            return name in ("keras_version", "backend") or bool(_LEGACY_LIST_ATTR.match(name))
        return node.kind == "group" and bool(_LEGACY_LIST_ATTR.match(name))
    return node.kind == "group" and node.path.split("/")[-1] == "vars" and name in _KERAS_VARS_ATTRS
