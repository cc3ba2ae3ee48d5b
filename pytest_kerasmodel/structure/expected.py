"""Assert what an artifact contains: :func:`assert_h5_structure` and the structure diff.

Data flows one way: artifact -> description (:mod:`pytest_kerasmodel.structure.describe`) ->
comparison with what was expected -> :class:`StructureDiff` (data) -> rendered tree diff (text)
inside a :class:`~pytest_kerasmodel.errors.StructureError`.

``expected`` takes three forms:

* a description from :func:`~pytest_kerasmodel.structure.describe.describe_artifact`, or the path
  of a JSON file holding one (a golden, see :mod:`pytest_kerasmodel.golden`): the model, its
  layers, the Keras-level weights and optimizer variables, and the HDF5 tree are compared;
* a mapping from HDF5 path, with fnmatch wildcards (``"model_weights/dense*/*/kernel*"``), to the
  expected shape, or to None when only presence matters;
* a list of such paths.

A path pattern that matches no HDF5 path is also tried against the Keras-level weight names
(``"hidden/kernel"``). With ``exact=True``, whatever is present but not expected is a
difference too (``+``).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_kerasmodel.diff import Diff
from pytest_kerasmodel.errors import StructureError

MAX_SHOWN = 40
LEVELS = ("model", "keras", "hdf5")
LEVEL_TITLES = {
    "model": "model",
    "keras": "Keras level (layer/variable)",
    "hdf5": "HDF5 level (path)",
}
# Attributes that change whenever a file is re-saved or Keras is upgraded, not with the model.
VOLATILE_ATTRS = frozenset({"keras_version", "backend", "date_saved"})
# Description keys kept in a structure golden: what the model is, not when or how big.
STRUCTURE_KEYS = ("format", "model", "layers", "weights", "optimizer", "lambda_layers", "hdf5")


@dataclass
class StructureChange:
    """One difference: ``op`` is ``-`` (missing), ``+`` (unexpected) or ``~`` (changed)."""

    level: str  # "model", "keras" or "hdf5"
    op: str
    path: str
    what: str  # "missing", "unexpected", "shape", "dtype", "kind", "attr <name>", "class", ...
    expected: Any = None
    actual: Any = None

    def message(self) -> str:
        if self.op == "-":
            return f"missing (expected {_entry(self.expected)})" if self.expected else "missing"
        if self.op == "+":
            return f"unexpected {_entry(self.actual)}" if self.actual else "unexpected"
        if self.actual is None:
            return f"{self.what}: missing (expected {_show(self.expected)})"
        if self.expected is None:
            return f"{self.what}: unexpected {_show(self.actual)}"
        return f"{self.what} {_show(self.actual)} (expected {_show(self.expected)})"


@dataclass
class StructureDiff(Diff):
    artifact: str
    expected_from: str  # "a description", "golden <path>", "3 path patterns"
    changes: list[StructureChange] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not self.changes

    def counts(self) -> dict[str, int]:
        return {op: sum(c.op == op for c in self.changes) for op in "-+~"}

    def render(self, max_shown: int = MAX_SHOWN) -> str:
        if not self.changes:
            return f"{self.artifact}: structure as expected ({self.expected_from})"
        c = self.counts()
        lines = [
            f"{self.artifact}: structure differs from {self.expected_from}: "
            f"{len(self.changes)} difference(s) ({c['-']} missing -, {c['+']} unexpected +, "
            f"{c['~']} changed ~)"
        ]
        shown = 0
        for level in LEVELS:
            changes = [ch for ch in self.changes if ch.level == level]
            if not changes or shown >= max_shown:
                continue
            lines.append(f"{LEVEL_TITLES[level]}:")
            take = changes[: max_shown - shown]
            lines.extend(_tree(take))
            shown += len(take)
        left = len(self.changes) - shown
        if left > 0:
            lines.append(f"... and {left} more difference(s) not shown (see StructureError.diff)")
        return "\n".join(lines)


def _entry(value: Any) -> str:
    return value if isinstance(value, str) else _show(value)


def _show(value: Any) -> str:
    if isinstance(value, dict) and "shape" in value:
        text = _shape(value["shape"])
        return f"{text} {value['dtype']}" if value.get("dtype") else text
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
        return _shape(list(value))
    return repr(value)


def _shape(shape: Sequence[int] | None) -> str:
    if shape is None:
        return "any shape"
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _tree(changes: list[StructureChange]) -> list[str]:
    """Changes as an indented tree: shared parents printed once, each leaf with its marker."""
    lines: list[str] = []
    printed: set[tuple[str, ...]] = set()
    for ch in sorted(changes, key=lambda c: (c.path.split("/"), c.what)):
        parts = tuple(p for p in ch.path.split("/") if p) or ("/",)
        for depth in range(1, len(parts)):
            prefix = parts[:depth]
            if prefix not in printed:
                printed.add(prefix)
                lines.append("    " + "  " * (depth - 1) + prefix[-1] + "/")
        indent = "  " * (len(parts) - 1)
        lines.append(f"  {ch.op} {indent}{parts[-1]}: {ch.message()}")
    return lines


# --------------------------------------------------------------------------------------------
# comparisons (no printing, no rendering)


def structure_view(description: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a description that a structure golden stores and compares."""
    return {key: description.get(key) for key in STRUCTURE_KEYS}


def _attrs(attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (attrs or {}).items() if k not in VOLATILE_ATTRS}


def _compare_entries(
    level: str,
    expected: Mapping[str, Any],
    actual: Mapping[str, Any],
    exact: bool,
    prefix: str = "",
) -> list[StructureChange]:
    changes: list[StructureChange] = []
    for name, exp in expected.items():
        path = prefix + name
        if name not in actual:
            changes.append(StructureChange(level, "-", path, "missing", expected=_brief(exp)))
            continue
        act = actual[name]
        for key in ("kind", "shape", "dtype", "target"):
            if key in exp and exp.get(key) != act.get(key):
                changes.append(StructureChange(level, "~", path, key, exp.get(key), act.get(key)))
        exp_attrs, act_attrs = _attrs(exp.get("attrs")), _attrs(act.get("attrs"))
        for attr in sorted(set(exp_attrs) | set(act_attrs)):
            e, a = exp_attrs.get(attr), act_attrs.get(attr)
            if e != a and (attr in exp_attrs or exact):
                changes.append(StructureChange(level, "~", path, f"attr {attr}", e, a))
    if exact:
        for name, act in actual.items():
            if name not in expected:
                changes.append(
                    StructureChange(level, "+", prefix + name, "unexpected", actual=_brief(act))
                )
    return changes


def _collapse(changes: list[StructureChange]) -> list[StructureChange]:
    """Missing or unexpected subtrees shown once, at their top, with a count of what is inside."""
    tops: dict[tuple[str, str], StructureChange] = {}
    inside: dict[tuple[str, str], int] = {}
    kept: list[StructureChange] = []
    for ch in sorted(changes, key=lambda c: c.path):
        if ch.op in "-+":
            parent = next(
                (t for (op, t) in tops if op == ch.op and ch.path.startswith(t + "/")), None
            )
            if parent is not None:
                inside[(ch.op, parent)] += 1
                continue
            tops[(ch.op, ch.path)] = ch
            inside[(ch.op, ch.path)] = 0
        kept.append(ch)
    for (op, path), n in inside.items():
        if n:
            ch = tops[(op, path)]
            summary = f"group with {n} object(s) inside"
            if op == "-":
                ch.expected = summary
            else:
                ch.actual = summary
    order = {id(c): i for i, c in enumerate(changes)}
    return sorted(kept, key=lambda c: order[id(c)])


def _brief(entry: Any) -> Any:
    if isinstance(entry, dict) and entry.get("kind") == "group":
        return "group"
    if isinstance(entry, dict) and "shape" in entry:
        return {"shape": entry["shape"], "dtype": entry.get("dtype")}
    return entry


def compare_descriptions(
    expected: Mapping[str, Any], actual: Mapping[str, Any], *, exact: bool = True
) -> list[StructureChange]:
    """Differences between two descriptions, at the model, Keras and HDF5 levels."""
    changes: list[StructureChange] = []
    if expected.get("format") != actual.get("format"):
        changes.append(
            StructureChange("model", "~", "format", "format", expected["format"], actual["format"])
        )
    exp_model, act_model = expected.get("model") or {}, actual.get("model") or {}
    if exp_model.get("class_name") != act_model.get("class_name"):
        changes.append(
            StructureChange(
                "model",
                "~",
                "model",
                "class",
                exp_model.get("class_name"),
                act_model.get("class_name"),
            )
        )
    exp_layers = {layer["name"]: layer for layer in expected.get("layers") or []}
    act_layers = {layer["name"]: layer for layer in actual.get("layers") or []}
    for name, layer in exp_layers.items():
        if name not in act_layers:
            changes.append(
                StructureChange("model", "-", f"layers/{name}", "missing", layer["class_name"])
            )
        elif layer["class_name"] != act_layers[name]["class_name"]:
            changes.append(
                StructureChange(
                    "model",
                    "~",
                    f"layers/{name}",
                    "class",
                    layer["class_name"],
                    act_layers[name]["class_name"],
                )
            )
    if exact:
        for name, layer in act_layers.items():
            if name not in exp_layers:
                changes.append(
                    StructureChange(
                        "model", "+", f"layers/{name}", "unexpected", actual=layer["class_name"]
                    )
                )
    changes += _compare_entries(
        "keras", expected.get("weights") or {}, actual.get("weights") or {}, exact
    )
    exp_opt = (expected.get("optimizer") or {}).get("variables") or {}
    act_opt = (actual.get("optimizer") or {}).get("variables") or {}
    changes += _compare_entries("keras", exp_opt, act_opt, exact)
    changes += _collapse(
        _compare_entries(
            "hdf5", expected.get("hdf5") or {}, actual.get("hdf5") or {}, exact, prefix="/"
        )
    )
    return changes


def _match(pattern: str, names: Iterable[str]) -> list[str]:
    pattern = pattern.strip("/")
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def compare_paths(
    expected: Mapping[str, Sequence[int] | None], actual: Mapping[str, Any], *, exact: bool
) -> list[StructureChange]:
    """Differences between path patterns (with expected shapes) and a description."""
    tree = {p: n for p, n in (actual.get("hdf5") or {}).items() if p}
    weights = actual.get("weights") or {}
    paths_of = actual.get("weight_paths") or {}
    covered: set[str] = set()
    changes: list[StructureChange] = []
    for pattern, shape in expected.items():
        want = None if shape is None else [int(d) for d in shape]
        hits = _match(pattern, tree)
        if hits:
            level, found = "hdf5", {h: tree[h] for h in hits}
            covered.update(hits)
        else:
            names = _match(pattern, weights)
            level, found = "keras", {n: weights[n] for n in names}
            covered.update(paths_of[n] for n in names if n in paths_of)
        if not found:
            changes.append(
                StructureChange(
                    "hdf5", "-", "/" + pattern.strip("/"), "missing", expected=want and list(want)
                )
            )
            continue
        if want is None:
            continue
        for name, node in found.items():
            shown = ("/" if level == "hdf5" else "") + name
            if node.get("kind", "dataset") != "dataset":
                changes.append(StructureChange(level, "~", shown, "kind", "dataset", node["kind"]))
            elif node["shape"] != want:
                changes.append(StructureChange(level, "~", shown, "shape", want, node["shape"]))
    if exact:
        for path, node in tree.items():
            if node.get("kind") == "dataset" and path not in covered:
                changes.append(
                    StructureChange("hdf5", "+", "/" + path, "unexpected", actual=_brief(node))
                )
    return changes


# --------------------------------------------------------------------------------------------
# the assertion


def structure_diff(
    path: str | os.PathLike[str],
    expected: Any,
    *,
    exact: bool = False,
    description: Mapping[str, Any] | None = None,
) -> StructureDiff:
    """Compare an artifact with ``expected`` (any of the three forms) and return the diff."""
    from pytest_kerasmodel.structure.describe import describe_artifact

    actual = description if description is not None else describe_artifact(path)
    name = Path(path).name
    if isinstance(expected, (str, os.PathLike)):
        from pytest_kerasmodel.golden import read_golden

        golden = read_golden(expected)
        return StructureDiff(
            name,
            f"golden {expected}",
            compare_descriptions(golden, actual, exact=exact),
        )
    if isinstance(expected, Mapping) and "weights" in expected and "format" in expected:
        return StructureDiff(
            name, "the expected description", compare_descriptions(expected, actual, exact=exact)
        )
    if isinstance(expected, Mapping):
        patterns = {str(k): v for k, v in expected.items()}
    elif isinstance(expected, (list, tuple, set, frozenset)):
        patterns = {str(p): None for p in expected}
    else:
        raise TypeError(
            "expected must be a description, a golden JSON path, a mapping from HDF5 path to "
            f"shape, or a list of paths; got {type(expected).__name__}"
        )
    return StructureDiff(
        name, f"{len(patterns)} expected path(s)", compare_paths(patterns, actual, exact=exact)
    )


def assert_h5_structure(
    path: str | os.PathLike[str], expected: Any, *, exact: bool = False
) -> None:
    """Assert that an artifact has the expected structure, else raise :class:`StructureError`.

    The error's ``.diff`` is a :class:`StructureDiff`; its text is a tree diff with missing
    (``-``), unexpected (``+``) and changed (``~``) entries at the Keras and HDF5 levels.
    """
    __tracebackhide__ = True
    diff = structure_diff(path, expected, exact=exact)
    if diff:
        raise StructureError(diff)
