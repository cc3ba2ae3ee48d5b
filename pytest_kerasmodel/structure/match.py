"""Two Keras artifacts compared the way Keras sees them: :func:`assert_artifacts_match`.

h5diff compares HDF5 paths, so the ``.keras`` and the ``.h5`` of one model look entirely
different to it; ``keras.saving.KerasFileEditor.compare`` needs Keras and a built model. Here
both artifacts are read without Keras (:func:`~pytest_kerasmodel.artifacts.open_artifact`,
the names of :mod:`pytest_kerasmodel.artifacts.names`) and compared in this order:

1. structure: the model's class, its layers and their classes, each weight's shape and dtype
   (the description's model and Keras levels,
   :func:`~pytest_kerasmodel.structure.expected.compare_descriptions`),
   and the model config by JSON path (:func:`~pytest_kerasmodel.compare.compare_configs`) when
   both artifacts hold one;
2. every weight present on both sides, by name, with numpy's mismatch report
   (:func:`~pytest_kerasmodel.compare.compare_arrays`);
3. the optimizer's variables, on request.

Weights are read one pair at a time, block of rows by block into two reused buffers
(:data:`BLOCK_BYTES` each), so memory stays bounded by a block, not by the weights or the
files. A block whose bytes are equal is equal; only a block that differs is compared value by
value, and the blocks' reports merge into numpy's report for the whole weight.

Data first: :class:`ArtifactDiff` (a dataclass, JSON-serialisable) is what the assertion,
``kerasmodel diff`` and ``--json`` all show.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_kerasmodel.compare import (
    WORST_POSITIONS,
    ArrayDiff,
    ConfigChange,
    Position,
    compare_arrays,
    compare_configs,
)
from pytest_kerasmodel.diff import Diff
from pytest_kerasmodel.errors import ArtifactError, ArtifactsDiffer, StructureError
from pytest_kerasmodel.structure.expected import StructureChange, compare_descriptions

if TYPE_CHECKING:  # pragma: no cover
    from pytest_kerasmodel.artifacts import Artifact

#: config keys that record how or where a model was saved, not what it is
VOLATILE_CONFIG_KEYS = (
    "build_config",
    "compile_config",
    "module",
    "registered_name",
    "shared_object_id",  # an id() of the saving process, to share objects within one file
)
#: bytes of each weight read and compared at a time (per side)
BLOCK_BYTES = 8 * 1024**2
MAX_SHOWN = 40


@dataclass
class ArtifactDiff(Diff):
    """How ``actual`` differs from ``expected``: structure, config, weights, optimizer."""

    expected: str
    actual: str
    expected_format: str
    actual_format: str
    rtol: float
    atol: float
    structure: list[StructureChange] = field(default_factory=list)
    config: list[ConfigChange] = field(default_factory=list)
    weights: list[ArrayDiff] = field(default_factory=list)
    optimizer: list[ArrayDiff] = field(default_factory=list)
    weights_compared: int = 0
    optimizer_compared: int | None = None  # None: the optimizer was not compared
    config_compared: bool = True  # False: one side is weights only (no layers, no config)
    notes: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.structure or self.config or self.weights or self.optimizer)

    @property
    def structure_differs(self) -> bool:
        return bool(self.structure or self.config)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtifactDiff:
        """The diff back from :meth:`to_dict` (what ``kerasmodel diff --json`` prints)."""

        def arrays(items: list[dict[str, Any]]) -> list[ArrayDiff]:
            out = []
            for item in items:
                item = dict(item)
                item["worst"] = [Position(tuple(p["index"]), p["expected"], p["actual"])
                                 for p in item.get("worst", [])]  # fmt: skip
                for key in ("expected_shape", "actual_shape"):
                    if item.get(key) is not None:
                        item[key] = tuple(item[key])
                out.append(ArrayDiff(**item))
            return out

        fields = dict(data)
        fields["structure"] = [StructureChange(**c) for c in data.get("structure", [])]
        fields["config"] = [ConfigChange(**c) for c in data.get("config", [])]
        fields["weights"] = arrays(data.get("weights", []))
        fields["optimizer"] = arrays(data.get("optimizer", []))
        return cls(**fields)

    def render(self, max_shown: int = MAX_SHOWN) -> str:
        head = f"{self.expected} ({self.expected_format}) vs {self.actual} ({self.actual_format})"
        tolerance = f"rtol={self.rtol:g}, atol={self.atol:g}"
        opt = (
            ""
            if self.optimizer_compared is None
            else f", {self.optimizer_compared} optimizer variable(s)"
        )
        if self.is_empty():
            what = "structure, config, " if self.config_compared else ""
            lines = [
                f"{head}: no difference in {what}"
                f"{self.weights_compared} weight(s){opt} ({tolerance})"
            ]
            return "\n".join(lines + [f"  note: {n}" for n in self.notes])
        lines = [f"{head}: the artifacts differ ({tolerance})"]
        if self.structure:
            lines.append(f"structure: {len(self.structure)} difference(s)")
            for change in self.structure[:max_shown]:
                lines.append(f"  {change.op} {change.path}: {change.message()}")
            if len(self.structure) > max_shown:
                lines.append(f"  ... {len(self.structure) - max_shown} more")
        if self.config:
            lines.append(f"config: {len(self.config)} difference(s)")
            lines += [f"  ~ {c.render()}" for c in self.config[:max_shown]]
            if len(self.config) > max_shown:
                lines.append(f"  ... {len(self.config) - max_shown} more")
        for title, diffs, compared in (
            ("weights", self.weights, self.weights_compared),
            ("optimizer", self.optimizer, self.optimizer_compared),
        ):
            if compared is None:
                continue
            lines.append(f"{title}: {len(diffs)} of {compared} compared differ")
            for d in diffs[:max_shown]:
                lines += ["  " + line for line in d.render().splitlines()]
            if len(diffs) > max_shown:
                lines.append(f"  ... {len(diffs) - max_shown} more (see .diff)")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _keras_view(description: dict[str, Any], with_optimizer: bool) -> dict[str, Any]:
    """What the structure comparison looks at: no format, no HDF5 tree (they differ across
    formats); layers only when the artifact records their classes (a weights-only file does
    not)."""
    view: dict[str, Any] = {"weights": description["weights"]}
    if description["model"] is not None:
        view["model"] = description["model"]
        view["layers"] = description["layers"]
    if with_optimizer:
        view["optimizer"] = description["optimizer"]
    return view


def _structure(
    expected: dict[str, Any], actual: dict[str, Any], with_optimizer: bool
) -> list[StructureChange]:
    e, a = _keras_view(expected, with_optimizer), _keras_view(actual, with_optimizer)
    if ("model" in e) != ("model" in a):  # one side is weights only: compare the weights
        e.pop("model", None), a.pop("model", None)
        e.pop("layers", None), a.pop("layers", None)
    return compare_descriptions(e, a, exact=True)


def _config(expected: Artifact, actual: Artifact) -> list[ConfigChange]:
    if expected.config is None or actual.config is None:
        return []
    return compare_configs(expected.config, actual.config, ignore_keys=VOLATILE_CONFIG_KEYS)


class _Scratch:
    """Two reusable byte buffers, one per side, as large as the largest block read so far:
    blocks are read into them (``read_direct``), never into fresh arrays."""

    def __init__(self) -> None:
        import numpy as np

        self.expected = np.empty(0, dtype=np.uint8)
        self.actual = np.empty(0, dtype=np.uint8)

    def views(self, dtype: Any, shape: tuple[int, ...]) -> tuple[Any, Any]:
        import numpy as np

        nbytes = int(np.dtype(dtype).itemsize * math.prod(shape))
        if self.expected.size < nbytes:
            self.expected = np.empty(nbytes, dtype=np.uint8)
            self.actual = np.empty(nbytes, dtype=np.uint8)
        return (
            self.expected[:nbytes].view(dtype).reshape(shape),
            self.actual[:nbytes].view(dtype).reshape(shape),
        )


def _bitwise_equal(x: Any, y: Any) -> bool:
    """The same bytes (so the same values, NaN payloads included); cheap, no float work."""
    import numpy as np

    bx, by = x.reshape(-1).view(np.uint8), y.reshape(-1).view(np.uint8)
    if bx.size % 8 == 0:
        bx, by = bx.view(np.uint64), by.view(np.uint64)
    return bool(np.array_equal(bx, by))


def _rank(position: Position) -> float:
    """How bad a mismatch is, as compare_arrays ranks them (a NaN on one side: the worst)."""
    try:
        diff = abs(complex(position.actual) - complex(position.expected))
    except (TypeError, ValueError):
        return 0.0
    return math.inf if math.isnan(diff) else diff


def _merge(name: str, parts: list[tuple[int, ArrayDiff]], shape: tuple[int, ...]) -> ArrayDiff:
    """One weight's diff from the diffs of its blocks of rows (``start``: a block's first row)."""
    first = parts[0][1]
    worst: list[Position] = []
    for start, part in parts:
        for p in part.worst:
            worst.append(Position((p.index[0] + start, *p.index[1:]), p.expected, p.actual))
    worst.sort(key=_rank, reverse=True)
    abs_diffs = [d.max_abs_diff for _, d in parts if d.max_abs_diff is not None]
    rel_diffs = [d.max_rel_diff for _, d in parts if d.max_rel_diff is not None]
    return ArrayDiff(
        name=name,
        kind=first.kind,
        expected_shape=shape,
        actual_shape=shape,
        expected_dtype=first.expected_dtype,
        actual_dtype=first.actual_dtype,
        mismatched=sum(d.mismatched for _, d in parts),
        total=math.prod(shape),
        max_abs_diff=max(abs_diffs) if abs_diffs else None,
        max_rel_diff=max(rel_diffs) if rel_diffs else None,
        worst=worst[:WORST_POSITIONS],
        rtol=first.rtol,
        atol=first.atol,
    )


def compare_datasets(
    name: str, e: Any, a: Any, rtol: float, atol: float, scratch: _Scratch | None = None
) -> ArrayDiff | None:
    """:func:`~pytest_kerasmodel.compare.compare_arrays` of two h5py datasets of one shape,
    block of rows by block (memory: two blocks, not two weights). A block whose bytes are
    equal is equal; only a block that differs is compared value by value, and the blocks'
    reports are merged: the same counts, maxima and worst positions as one comparison."""
    import numpy as np

    shape = tuple(e.shape)
    numeric = e.dtype == a.dtype and e.dtype.kind in "biufc"
    if not numeric or not shape or e.size == 0:
        return compare_arrays(name, e[()], a[()], rtol, atol)
    scratch = scratch or _Scratch()
    row_bytes = max(1, e.dtype.itemsize * math.prod(shape[1:]))
    step = max(1, BLOCK_BYTES // row_bytes)
    parts: list[tuple[int, ArrayDiff]] = []
    for start in range(0, shape[0], step):
        stop = min(start + step, shape[0])
        eb, ab = scratch.views(e.dtype, (stop - start, *shape[1:]))
        e.read_direct(eb, np.s_[start:stop], np.s_[0 : stop - start])
        a.read_direct(ab, np.s_[start:stop], np.s_[0 : stop - start])
        if _bitwise_equal(eb, ab):
            continue
        diff = compare_arrays(name, eb, ab, rtol, atol)
        if diff is not None:
            parts.append((start, diff))
    return _merge(name, parts, shape) if parts else None


def _compare_weights(
    expected: Artifact,
    actual: Artifact,
    names: list[str],
    e_paths: dict[str, str],
    a_paths: dict[str, str],
    rtol: float,
    atol: float,
) -> tuple[list[ArrayDiff], int]:
    diffs: list[ArrayDiff] = []
    compared = 0
    scratch = _Scratch()
    for name in names:
        e_ds, a_ds = expected.dataset(e_paths[name]), actual.dataset(a_paths[name])
        if e_ds.shape != a_ds.shape:
            continue  # a shape change is a structure difference, reported there
        compared += 1
        diff = compare_datasets(name, e_ds, a_ds, rtol, atol, scratch)
        if diff is not None:
            diffs.append(diff)
    return diffs, compared


def _read_error(path: Path, exc: BaseException) -> ArtifactError:
    return ArtifactError(path, "diff", f"cannot read the file: {type(exc).__name__}: {exc}")


def artifacts_diff(
    expected: str | os.PathLike[str],
    actual: str | os.PathLike[str],
    *,
    rtol: float | None = None,
    atol: float | None = None,
    check_optimizer: bool = False,
) -> ArtifactDiff:
    """Compare two artifacts of any formats and layouts; return the (possibly empty) diff.

    ``rtol``/``atol`` default to 0: values must be equal (as h5diff compares by default).
    Raises :class:`~pytest_kerasmodel.errors.ArtifactError` when either cannot be read safely.
    """
    from pytest_kerasmodel.artifacts import open_artifact
    from pytest_kerasmodel.artifacts.base import H5_ERRORS
    from pytest_kerasmodel.structure.describe import describe_artifact
    from pytest_kerasmodel.structure.weights import _require_readable

    r, a_tol = float(rtol or 0.0), float(atol or 0.0)
    e_path, a_path = Path(expected), Path(actual)
    with open_artifact(e_path) as e_art, open_artifact(a_path) as a_art:
        _require_readable(e_art)
        _require_readable(a_art)
        current = e_path
        try:
            e_desc = describe_artifact(e_art)
            current = a_path
            a_desc = describe_artifact(a_art)
            diff = ArtifactDiff(
                expected=str(expected),
                actual=str(actual),
                expected_format=e_art.format,
                actual_format=a_art.format,
                rtol=r,
                atol=a_tol,
                structure=_structure(e_desc, a_desc, check_optimizer),
                config=_config(e_art, a_art),
            )
            if e_desc["model"] is None or a_desc["model"] is None:
                diff.config_compared = False
                diff.notes.append(
                    "a weights-only file records no layer classes or config: only the weights "
                    "were compared"
                )
            e_paths, a_paths = e_desc["weight_paths"], a_desc["weight_paths"]
            common = [n for n in e_paths if n in a_paths]
            current = e_path
            diff.weights, diff.weights_compared = _compare_weights(
                e_art, a_art, common, e_paths, a_paths, r, a_tol
            )
            if check_optimizer:
                from pytest_kerasmodel.artifacts.names import optimizer_weight_paths

                e_opt = dict(optimizer_weight_paths(e_art))
                a_opt = dict(optimizer_weight_paths(a_art))
                shared = [n for n in e_opt if n in a_opt]
                diff.optimizer, diff.optimizer_compared = _compare_weights(
                    e_art, a_art, shared, e_opt, a_opt, r, a_tol
                )
        except H5_ERRORS as exc:
            raise _read_error(current, exc) from None
    return diff


def assert_artifacts_match(
    expected: str | os.PathLike[str],
    actual: str | os.PathLike[str],
    *,
    rtol: float | None = None,
    atol: float | None = None,
    check_optimizer: bool = False,
) -> None:
    """Assert that two artifacts hold the same model: structure, config, every weight by its
    Keras name (and the optimizer's variables with ``check_optimizer=True``).

    The ``.keras`` and the ``.h5`` of one model match. Raises
    :class:`~pytest_kerasmodel.errors.StructureError` when the layers, classes, config or weight
    shapes differ, else :class:`~pytest_kerasmodel.errors.ArtifactsDiffer` when values do; both
    carry the :class:`ArtifactDiff` as ``.diff``.
    """
    __tracebackhide__ = True
    diff = artifacts_diff(expected, actual, rtol=rtol, atol=atol, check_optimizer=check_optimizer)
    if diff.structure_differs:
        raise StructureError(diff)
    if diff:
        raise ArtifactsDiffer(diff)
