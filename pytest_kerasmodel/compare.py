"""Numpy-only comparisons: arrays, model outputs, weights by path, JSON configs.

Each comparison returns diff objects (or nothing when equal) and never prints; the diff
objects render themselves as text. Array comparisons follow ``np.allclose`` semantics,
``|actual - expected| <= atol + rtol * |expected|``, with NaN matching NaN only and an
infinity matching only the same infinity.

This module imports numpy only: no Keras, no TensorFlow, no h5py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_kerasmodel.diff import Diff, short

#: how many of the worst mismatching positions an :class:`ArrayDiff` keeps
WORST_POSITIONS = 5

_MISSING = "<missing>"


@dataclass
class Position:
    """One mismatching element: where it is, what was expected, what came back."""

    index: tuple[int, ...]
    expected: Any
    actual: Any


@dataclass
class ArrayDiff(Diff):
    """How an array (an output, a weight, an optimizer variable) differs from the expected one.

    ``kind`` is ``"values"``, ``"shape"``, ``"dtype"`` (dtypes differ; values are compared
    too), ``"missing"`` (expected, not found) or ``"unexpected"`` (found, not expected).
    """

    name: str
    kind: str
    expected_shape: tuple[int, ...] | None = None
    actual_shape: tuple[int, ...] | None = None
    expected_dtype: str | None = None
    actual_dtype: str | None = None
    mismatched: int = 0
    total: int = 0
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    worst: list[Position] = field(default_factory=list)
    rtol: float = 0.0
    atol: float = 0.0

    def is_empty(self) -> bool:
        return False

    @property
    def percent(self) -> float:
        return 100.0 * self.mismatched / self.total if self.total else 0.0

    def summary(self) -> str:
        """One line: what differs and by how much."""
        shape = _shape(self.expected_shape)
        if self.kind == "missing":
            return f"{self.name}: missing (expected shape {shape} {self.expected_dtype})"
        if self.kind == "unexpected":
            actual = _shape(self.actual_shape)
            return f"{self.name}: unexpected (shape {actual} {self.actual_dtype})"
        if self.kind == "shape":
            return (
                f"{self.name}: shape {shape} became {_shape(self.actual_shape)} "
                f"({self.expected_dtype} -> {self.actual_dtype})"
            )
        head = f"{self.name}: shape {shape} {self.expected_dtype}"
        if self.kind == "dtype":
            head += f" became {self.actual_dtype}"
        if not self.mismatched:
            return head
        text = f"{head}: {self.mismatched} of {self.total} elements differ ({self.percent:.3g}%)"
        if self.max_abs_diff is not None:
            text += f", max abs diff {_num(self.max_abs_diff)}"
        if self.max_rel_diff is not None:
            text += f", max rel diff {_num(self.max_rel_diff)}"
        return text

    def render(self) -> str:
        lines = [self.summary()]
        if self.worst:
            rows = [("index", "expected", "actual")]
            rows += [(_index(p.index), _num(p.expected), _num(p.actual)) for p in self.worst]
            widths = [max(len(r[i]) for r in rows) for i in range(3)]
            for row in rows:
                lines.append(
                    "    "
                    + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                )
            if self.mismatched > len(self.worst):
                lines.append(f"    ... {self.mismatched - len(self.worst)} more")
        return "\n".join(lines)


@dataclass
class ConfigChange(Diff):
    """One difference between two JSON configs, at a JSON path such as ``layers[1].config.units``.

    ``old`` or ``new`` is the string ``"<missing>"`` when the key exists on one side only.
    """

    path: str
    old: Any
    new: Any

    def is_empty(self) -> bool:
        return False

    def render(self) -> str:
        return f"{self.path or '<root>'}: {_shown(self.old)} -> {_shown(self.new)}"


def _shape(shape: Sequence[int] | None) -> str:
    return "?" if shape is None else str(tuple(shape))


def _index(index: Sequence[int]) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]"


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.7g}"
    return str(value)


def _shown(value: Any) -> str:
    return value if value == _MISSING else short(value, 80)


def _is_numeric(dtype: np.dtype) -> bool:
    return dtype.kind in "biufc"


def compare_arrays(
    name: str, expected: Any, actual: Any, rtol: float, atol: float
) -> ArrayDiff | None:
    """Compare two arrays with ``np.allclose`` semantics; ``None`` when they match.

    Shapes must match exactly. Differing dtypes are reported (``kind="dtype"``) and the
    values still compared. Non-numeric arrays (strings, objects) must be equal.
    """
    e = np.asarray(expected)
    a = np.asarray(actual)
    base = {
        "name": name,
        "expected_shape": tuple(e.shape),
        "actual_shape": tuple(a.shape),
        "expected_dtype": str(e.dtype),
        "actual_dtype": str(a.dtype),
        "total": int(e.size),
        "rtol": rtol,
        "atol": atol,
    }
    if e.shape != a.shape:
        return ArrayDiff(kind="shape", **base)  # type: ignore[arg-type]
    kind = "dtype" if e.dtype != a.dtype else "values"
    numeric = _is_numeric(e.dtype) and _is_numeric(a.dtype)
    if kind == "values" and np.array_equal(e, a, equal_nan=numeric and e.dtype.kind in "fc"):
        return None  # the common case: bit-identical after a roundtrip
    if not numeric:
        bad = e != a
        mismatched = int(np.count_nonzero(bad))
        if not mismatched and kind == "values":
            return None
        if e.ndim == 0:
            indices: list[tuple[int, ...]] = [()] if mismatched else []
        else:
            indices = [tuple(int(i) for i in idx) for idx in zip(*np.nonzero(bad), strict=True)]
        worst = [Position(idx, e[idx].item(), a[idx].item()) for idx in indices[:WORST_POSITIONS]]
        return ArrayDiff(kind=kind, mismatched=mismatched, worst=worst, **base)  # type: ignore[arg-type]

    ef = e.astype(np.float64) if e.dtype.kind != "c" else e.astype(np.complex128)
    af = a.astype(np.float64) if a.dtype.kind != "c" else a.astype(np.complex128)
    close = np.isclose(af, ef, rtol=rtol, atol=atol, equal_nan=True)
    bad = ~close
    mismatched = int(np.count_nonzero(bad))
    if not mismatched:
        return None if kind == "values" else ArrayDiff(kind=kind, **base)  # type: ignore[arg-type]

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        abs_diff = np.abs(af - ef)
        rel_diff = abs_diff / np.abs(ef)
    # A NaN on one side only, or infinities that differ, rank as the worst mismatches.
    rank = np.where(bad, np.where(np.isnan(abs_diff), np.inf, abs_diff), -1.0)
    bad_abs = abs_diff[bad]
    finite_abs = bad_abs[np.isfinite(bad_abs)]
    max_abs = float(finite_abs.max()) if finite_abs.size else math.inf
    bad_rel = rel_diff[bad & (ef != 0)]
    finite_rel = bad_rel[np.isfinite(bad_rel)]
    max_rel = float(finite_rel.max()) if finite_rel.size else None
    flat_rank = np.atleast_1d(rank).ravel()
    count = min(WORST_POSITIONS, mismatched)
    order = np.argsort(-flat_rank, kind="stable")[:count]
    shape = e.shape if e.shape else (1,)
    worst = []
    for flat in order:
        idx = tuple(int(i) for i in np.unravel_index(int(flat), shape)) if e.shape else ()
        worst.append(Position(idx, e[idx].item(), a[idx].item()))
    return ArrayDiff(
        kind=kind,
        mismatched=mismatched,
        max_abs_diff=max_abs,
        max_rel_diff=max_rel,
        worst=worst,
        **base,  # type: ignore[arg-type]
    )


def _named_outputs(outputs: Any, names: Sequence[str] | None) -> dict[str, Any]:
    if isinstance(outputs, Mapping):
        return {str(k): v for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        if names is not None and len(names) == len(outputs):
            return dict(zip(names, outputs, strict=True))
        return {f"output[{i}]": v for i, v in enumerate(outputs)}
    name = names[0] if names else "output"
    return {name: outputs}


def compare_outputs(
    expected: Any,
    actual: Any,
    rtol: float,
    atol: float,
    names: Sequence[str] | None = None,
) -> list[ArrayDiff]:
    """Compare model outputs: a single array, a list/tuple or a dict of arrays.

    ``names`` labels list outputs (a model's ``output_names``); dict outputs use their keys.
    An output present on one side only is reported as missing or unexpected.
    """
    exp = _named_outputs(expected, names)
    act = _named_outputs(actual, names)
    return compare_named_arrays(exp, act, rtol, atol)


def compare_named_arrays(
    expected: Mapping[str, Any],
    actual: Mapping[str, Any],
    rtol: float,
    atol: float,
    labels: Mapping[str, str] | None = None,
    actual_labels: Mapping[str, str] | None = None,
) -> list[ArrayDiff]:
    """Compare arrays matched by key (a weight's path, an output's name).

    ``labels`` maps a key to the name shown in the diff (defaults to the key);
    ``actual_labels`` does the same for keys found only in ``actual``.
    """
    labels = labels or {}
    actual_labels = actual_labels or {}
    diffs: list[ArrayDiff] = []
    for key, exp in expected.items():
        label = labels.get(key, key)
        if key not in actual:
            e = np.asarray(exp)
            diffs.append(
                ArrayDiff(
                    name=label,
                    kind="missing",
                    expected_shape=tuple(e.shape),
                    expected_dtype=str(e.dtype),
                    total=int(e.size),
                    rtol=rtol,
                    atol=atol,
                )
            )
            continue
        diff = compare_arrays(label, exp, actual[key], rtol, atol)
        if diff is not None:
            diffs.append(diff)
    for key, act in actual.items():
        if key in expected:
            continue
        a = np.asarray(act)
        diffs.append(
            ArrayDiff(
                name=actual_labels.get(key, labels.get(key, key)),
                kind="unexpected",
                actual_shape=tuple(a.shape),
                actual_dtype=str(a.dtype),
                total=int(a.size),
                rtol=rtol,
                atol=atol,
            )
        )
    return diffs


def _numbers_equal(a: Any, b: Any, rel_tol: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    fa, fb = float(a), float(b)
    if math.isnan(fa) and math.isnan(fb):
        return True
    return fa == fb or math.isclose(fa, fb, rel_tol=rel_tol, abs_tol=0.0)


def compare_configs(
    expected: Any,
    actual: Any,
    *,
    ignore_keys: Iterable[str] = (),
    float_rel_tol: float = 1e-6,
    path: str = "",
) -> list[ConfigChange]:
    """Differences between two JSON-like configs (dicts, lists, scalars), by JSON path.

    Keys in ``ignore_keys`` are skipped at every depth. Numbers compare with a relative
    tolerance of ``float_rel_tol`` (a hyperparameter stored as float32 and read back as
    float64 differs in its last digits) and ``1 == 1.0``; tuples equal lists.
    """
    ignore = frozenset(ignore_keys)
    changes: list[ConfigChange] = []
    _walk_config(expected, actual, path, ignore, float_rel_tol, changes)
    return changes


def _walk_config(
    old: Any,
    new: Any,
    path: str,
    ignore: frozenset[str],
    tol: float,
    out: list[ConfigChange],
) -> None:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in old:
            if key in ignore:
                continue
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append(ConfigChange(sub, old[key], _MISSING))
            else:
                _walk_config(old[key], new[key], sub, ignore, tol, out)
        for key in new:
            if key not in old and key not in ignore:
                sub = f"{path}.{key}" if path else str(key)
                out.append(ConfigChange(sub, _MISSING, new[key]))
        return
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        if len(old) != len(new):
            out.append(ConfigChange(path, list(old), list(new)))
            return
        for i, (o, n) in enumerate(zip(old, new, strict=True)):
            _walk_config(o, n, f"{path}[{i}]", ignore, tol, out)
        return
    numbers = (int, float)
    if isinstance(old, numbers) and isinstance(new, numbers):
        if not _numbers_equal(old, new, tol):
            out.append(ConfigChange(path, old, new))
        return
    if old != new or type(old) is not type(new):
        out.append(ConfigChange(path, old, new))
